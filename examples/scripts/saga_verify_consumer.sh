#!/bin/sh
# saga_verify_consumer.sh ORDER CONSUMER - the Consumer service's check in the
# order saga: the consumer must exist and be allowed to order. A stand-in for
# a call to another service: the "registry" is the list below. Prints
# "ORDER CONSUMER" (the order id passed on to the kitchen step).
set -eu
order=$1
consumer=$2
case $consumer in
    alice | bob | chloe | dae-ho | min-ji)
        echo "consumer service: $consumer may order ($order)" >&2 ;;
    mallory)
        echo "consumer service: $consumer is suspended, refusing $order" >&2
        exit 1 ;;
    *)
        echo "consumer service: no consumer '$consumer'" >&2
        exit 1 ;;
esac
printf '%s %s' "$order" "$consumer"
