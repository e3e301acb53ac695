"""Produce with an idempotent confluent-kafka producer, then read back.

usage: confluent_idempotent.py ADDR TOPIC COUNT

Produces COUNT messages b'idempotent N' to partition 0 with
enable.idempotence and acks=all, and exits 1 unless every delivery report
is a success. Then assigns partition 0 from the beginning (no group
coordinator is needed for assign without commits) and prints each message
as "partition offset value" until COUNT are read.
"""
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

addr, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

failures = []


def report(err, msg):
    if err is not None:
        failures.append(err)


producer = Producer({'bootstrap.servers': addr, 'enable.idempotence': True,
                     'acks': 'all', 'message.timeout.ms': 20000})
for i in range(count):
    producer.produce(topic, b'idempotent %d' % i, partition=0, on_delivery=report)
    producer.poll(0)
left = producer.flush(30)
if left or failures:
    print('delivery failed: %d undelivered, errors %s' % (left, failures[:5]), file=sys.stderr)
    sys.exit(1)
print('sent', count, flush=True)

consumer = Consumer({'bootstrap.servers': addr, 'group.id': 'unused',
                     'enable.auto.commit': False, 'enable.auto.offset.store': False})
consumer.assign([TopicPartition(topic, 0, 0)])
got = 0
while got < count:
    msg = consumer.poll(15)
    if msg is None:
        print('timed out after %d messages' % got, file=sys.stderr)
        sys.exit(1)
    if msg.error():
        raise KafkaException(msg.error())
    print(msg.partition(), msg.offset(), msg.value().decode(), flush=True)
    got += 1
consumer.close()
