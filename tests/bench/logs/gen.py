"""Synthetic nova-compute log of a given size, built from the fixtures' shapes.

    /usr/bin/python3 tests/bench/logs/gen.py SIZE OUT      (SIZE: bytes, or 512M, 1G)

Each block is one fixture host's file (source cmp-a01, source cmp-a03, destination cmp-b07,
in turn) moved to its own day, with every migration's instance UUID and request id made
unique, so the output has many migrations (about 15 per 11 MB) among the same noise
(periodic tasks, resource audits, tracebacks) at the same rates as the fixtures.
"""
import datetime
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', '..', 'data', 'fixtures', 'nova-compute')
HOSTS = ('cmp-a01', 'cmp-a03', 'cmp-b07')


def parse_size(text):
    m = re.fullmatch(r'(\d+)([KMG]?)', text.upper())
    if not m:
        sys.exit('gen.py: bad size %r' % text)
    return int(m.group(1)) * {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}[m.group(2)]


def load(host):
    with open(os.path.join(FIXTURES, host, 'nova-compute.log'), 'rb') as f:
        data = f.read()
    with open(os.path.join(FIXTURES, host, 'nova-compute.log.truth.json')) as f:
        truth = json.load(f)
    ids = set()
    for m in truth['live_migrations']:
        ids.add(m['instance_uuid'].encode())
        ids.add(m['request_id'].encode())
    date = truth['first_line_at']['local'][:10].encode()
    return data, sorted(ids), date


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: gen.py SIZE OUT')
    size = parse_size(sys.argv[1])
    blocks = [load(h) for h in HOSTS]
    day0 = datetime.date(2027, 1, 1)
    written = 0
    k = 0
    with open(sys.argv[2], 'wb') as out:
        while written < size:
            data, ids, date = blocks[k % len(blocks)]
            new_date = (day0 + datetime.timedelta(days=k)).isoformat().encode()
            block = data.replace(date + b' ', new_date + b' ')
            for ident in ids:
                block = block.replace(ident, ident[:-6] + b'%06x' % (k & 0xffffff))
            if written + len(block) > size:
                block = block[:block.rindex(b'\n', 0, size - written) + 1] if \
                    b'\n' in block[:size - written] else b''
                if not block:
                    break
            out.write(block)
            written += len(block)
            k += 1
    print('%s: %d bytes, %d blocks' % (sys.argv[2], written, k))


if __name__ == '__main__':
    main()
