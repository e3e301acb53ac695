"""Consume a topic in a consumer group with confluent-kafka (librdkafka).

usage: group_confluent.py ADDR TOPIC GROUP CLIENT_ID LIMIT

Joins GROUP with client.id CLIENT_ID, subscribed to TOPIC, reading from
the earliest offset where the group has committed none. Prints
"assigned P,P,..." whenever its assignment changes (before any record of
the new assignment), then each record as "record partition offset value".

LIMIT 0: runs until its stdin is closed, committing synchronously after
every poll that returned records; then prints "done", leaves the group
and exits 0.

LIMIT N > 0: reads exactly N records, commits the offset after the last
record it read of each partition, prints "committed P:O,P:O,..." and
"done", leaves the group and exits 0.

Either way it gives up after 60s with exit status 2.
"""
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

addr, topic, group, client_id, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

stop = threading.Event()


def watch_stdin():
    sys.stdin.read()
    stop.set()


if limit == 0:
    threading.Thread(target=watch_stdin, daemon=True).start()

consumer = Consumer({'bootstrap.servers': addr, 'group.id': group, 'client.id': client_id,
                     'auto.offset.reset': 'earliest', 'enable.auto.commit': False,
                     'session.timeout.ms': 6000, 'heartbeat.interval.ms': 500})
consumer.subscribe([topic])
deadline = time.monotonic() + 60
assigned = None
got = 0
after = {}  # partition -> offset after the last record read
while not stop.is_set() and (limit == 0 or got < limit):
    if time.monotonic() > deadline:
        print('timed out after %d records' % got, file=sys.stderr, flush=True)
        sys.exit(2)
    msgs = consumer.consume(num_messages=(limit - got) if limit else 500, timeout=0.2)
    now = sorted(tp.partition for tp in consumer.assignment())
    if now != assigned:
        print('assigned', ','.join(map(str, now)), flush=True)
        assigned = now
    n = 0
    for m in msgs:
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(m.error())
        print('record', m.partition(), m.offset(), m.value().decode(), flush=True)
        after[m.partition()] = m.offset() + 1
        n += 1
    got += n
    if n and limit == 0:
        consumer.commit(asynchronous=False)

if limit:
    consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in sorted(after.items())], asynchronous=False)
    print('committed', ','.join('%d:%d' % (p, o) for p, o in sorted(after.items())), flush=True)
print('done', flush=True)
consumer.close()
