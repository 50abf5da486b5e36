/*
 * layout.h - where each task sits in a drawing of its DAG (SPEC section 9's
 * graph view): the layer is the task's level (longest path from a root,
 * graph_levels); this module chooses the order within each layer so that
 * edges cross as little as it can cheaply manage.
 *
 * Key idea: the barycenter heuristic of layered (Sugiyama-style) drawing.
 * Sweep the layers top-down, placing each node at the mean position of its
 * upstream nodes, then bottom-up with its downstream nodes; positions are
 * taken relative to each layer's width so that an edge skipping layers
 * still pulls its ends together. After each sweep the crossings between
 * adjacent layers are counted (inversions, by merge sort) and the best order
 * seen is kept, so the result is never worse than declaration order.
 * Cost: LAYOUT_SWEEPS x O(V log V + E log E).
 *
 * Pure function of its inputs; any thread.
 */
#ifndef BARAM_DAG_LAYOUT_H
#define BARAM_DAG_LAYOUT_H

#include <stdint.h>

#include "dag/graph.h"

#define LAYOUT_SWEEPS 8

/* Fills order[v] with v's position within its layer (0-based; a permutation of each layer),
 * given level[v] for every vertex and nlevels (graph_levels). Returns the crossings between
 * adjacent layers of the order chosen (edges spanning more than one layer are not counted). */
uint64_t layout_order(const struct graph *g, const uint32_t *level, uint32_t nlevels,
                      uint32_t *order);
/* The crossings between adjacent layers of a given order (as layout_order counts them). */
uint64_t layout_crossings(const struct graph *g, const uint32_t *level, const uint32_t *order);

#endif
