"""Consume a topic in a consumer group with kafka-python.

usage: group_kafka_python.py ADDR TOPIC GROUP CLIENT_ID LIMIT

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

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

addr, topic, group, client_id, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

stop = threading.Event()


def watch_stdin():
    sys.stdin.read()
    stop.set()


if limit == 0:
    threading.Thread(target=watch_stdin, daemon=True).start()

consumer = KafkaConsumer(topic, bootstrap_servers=[addr], group_id=group, client_id=client_id,
                         auto_offset_reset='earliest', enable_auto_commit=False,
                         session_timeout_ms=6000, heartbeat_interval_ms=500)
deadline = time.monotonic() + 60
assigned = None
got = 0
after = {}  # partition -> offset after the last record read
while not stop.is_set() and (limit == 0 or got < limit):
    if time.monotonic() > deadline:
        print('timed out after %d records' % got, file=sys.stderr, flush=True)
        sys.exit(2)
    batch = consumer.poll(timeout_ms=200, max_records=(limit - got) if limit else 500)
    now = sorted(tp.partition for tp in consumer.assignment())
    if now != assigned:
        print('assigned', ','.join(map(str, now)), flush=True)
        assigned = now
    n = 0
    for tp, msgs in sorted(batch.items()):
        for m in msgs:
            print('record', m.partition, m.offset, m.value.decode(), flush=True)
            after[m.partition] = m.offset + 1
            n += 1
    got += n
    if n and limit == 0:
        consumer.commit()

if limit:
    consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, '') for p, o in after.items()})
    print('committed', ','.join('%d:%d' % (p, o) for p, o in sorted(after.items())), flush=True)
print('done', flush=True)
consumer.close(autocommit=False)
