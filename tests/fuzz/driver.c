/*
 * driver.c - runs a fuzz target's LLVMFuzzerTestOneInput over stored inputs
 * without libFuzzer, so every corpus file (seeds and past crashes) is a
 * regression test in the ordinary sanitizer build. Arguments are files or
 * folders (each regular file directly inside is one input).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0, n;
    uint8_t *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf)
        return -1;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) < 0)
                return 2;
            count++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, NULL);
        if (n < 0) {
            perror(argv[i]);
            return 2;
        }
        char **paths = calloc((size_t)n + 1, sizeof *paths);
        int np = 0;
        for (int k = 0; k < n; k++) {
            if (names[k]->d_name[0] != '.') {
                size_t len = strlen(argv[i]) + strlen(names[k]->d_name) + 2;
                paths[np] = malloc(len);
                snprintf(paths[np], len, "%s/%s", argv[i], names[k]->d_name);
                np++;
            }
            free(names[k]);
        }
        free(names);
        qsort(paths, (size_t)np, sizeof *paths, cmp);
        for (int k = 0; k < np; k++) {
            if (stat(paths[k], &st) == 0 && S_ISREG(st.st_mode)) {
                if (run_file(paths[k]) < 0)
                    return 2;
                count++;
            }
            free(paths[k]);
        }
        free(paths);
    }
    printf("%d inputs ran\n", count);
    return count > 0 ? 0 : 1;
}
