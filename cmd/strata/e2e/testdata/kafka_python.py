"""Produce messages with kafka-python, then read them back without a group.

usage: kafka_python.py ADDR[,ADDR...] TOPIC COUNT

Every address of the comma-separated list is a bootstrap server.

Sends b'content message', then b'content message 1' ... up to COUNT
messages, with acks=all and the default partitioner; prints "sent COUNT",
then each message read as "partition offset value", one a line.
"""
import sys

from kafka import KafkaConsumer, KafkaProducer

addrs, topic, count = sys.argv[1].split(','), sys.argv[2], int(sys.argv[3])

producer = KafkaProducer(bootstrap_servers=addrs, acks='all')
futures = [producer.send(topic, b'content message')]
futures += [producer.send(topic, b'content message %d' % i) for i in range(1, count)]
producer.flush(timeout=20)
for f in futures:
    f.get(timeout=20)  # raises if the broker refused the message
producer.close(timeout=10)
print('sent', count, flush=True)

consumer = KafkaConsumer(topic, bootstrap_servers=addrs, group_id=None,
                         auto_offset_reset='earliest', enable_auto_commit=False,
                         consumer_timeout_ms=10000)
got = 0
for msg in consumer:
    print(msg.partition, msg.offset, msg.value.decode(), flush=True)
    got += 1
    if got == count:
        break
consumer.close()
