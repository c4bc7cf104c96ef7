"""The CPython side of tests/python_serializers.rs: Python redisext 2.0.2's own
serializers (redisext.serializer.JSON, Numeric, Pickle) and redis-py's encoder,
answering batches of requests.

    python serializer_oracle.py

Reads one request a line on stdin, writes one answer a line on stdout, and
flushes when it reads the line `flush`. Payloads are hex. Answers are `ok …` or
`err <hex of the error>`.

    jf <bits> <json>    a double (its 64 bits) and Rust's JSON for it: answers
                        `ok <Python's JSON> <type of Python's decoding of Rust's JSON>
                        <its bits> <Python's JSON of that decoding>`
    jd <json>           decodes with JSON.decode and re-encodes: `ok <JSON>`
    jp <expr>           encodes eval(expr) with JSON.encode: `ok <JSON>` (expressions
                        may call double(bits) and utf8(hex))
    nd <bytes>          Numeric.decode(bytes): `ok <decimal>`
    ne <decimal>        the bytes redis-py sends for Numeric.encode(int): `ok <bytes>`
    pf <bits> <pickle>  a double and Rust's pickle of it: `ok <Python's pickle>
                        <canon of Python's unpickling of Rust's pickle>`
    pp <expr> <proto>   pickles eval(expr) (proto `redisext`: Pickle.encode):
                        `ok <pickle> <canon of the value>`
    pl <pickle>         Pickle.decode(pickle): `ok <canon>`

The bytes Python stores are what redis-py's Encoder makes of the serializer's
output (str as UTF-8, int as its decimal text), as a Python service sends them.
`canon` is a typed description of a value (float bits, str vs bytes, tuple vs
list, set vs frozenset, dicts and sets in sorted order) that the Rust side
computes the same way.
"""

import math
import pickle
import struct
import sys

import redis.connection
import redisext.serializer

ENCODER = redis.connection.Encoder('utf-8', 'strict', False)
JSON = redisext.serializer.JSON
NUMERIC = redisext.serializer.Numeric
PICKLE = redisext.serializer.Pickle


def stored(value):
    """The bytes redis-py sends for a serializer's output."""
    return ENCODER.encode(value)


def double(bits):
    return struct.unpack('>d', int(bits, 16).to_bytes(8, 'big'))[0]


def utf8(text_hex):
    return bytes.fromhex(text_hex).decode()


def bits_of(value):
    return struct.pack('>d', value).hex()


def canon(x, path=()):
    t = type(x)
    if t is float:
        return 'float:' + ('nan' if math.isnan(x) else bits_of(x))
    if t in (int, bool, type(None)):
        return '%s:%r' % (t.__name__, x)
    if t is str:
        return 'str:' + x.encode('utf-8', 'surrogatepass').hex()
    if t is bytes:
        return 'bytes:' + x.hex()
    if id(x) in path:
        return 'recursive'
    path = path + (id(x),)
    if t in (list, tuple):
        return '%s[%s]' % (t.__name__, ','.join(canon(i, path) for i in x))
    if t in (set, frozenset):
        return '%s{%s}' % (t.__name__, ','.join(sorted(canon(i, path) for i in x)))
    if t is dict:
        return 'dict{%s}' % ','.join(sorted(canon(k, path) + ':' + canon(v, path) for k, v in x.items()))
    return 'other:' + t.__name__


def evaluate(expr_hex):
    import collections, decimal  # noqa: F401 (for expressions that name them)
    return eval(bytes.fromhex(expr_hex).decode())


def answer(op, args):
    if op == 'jf':
        x = double(args[0])
        y = JSON.decode(bytes.fromhex(args[1]))
        reencoded = stored(JSON.encode(y)).hex()
        y_bits = bits_of(y) if type(y) is float else '-'
        return [stored(JSON.encode(x)).hex(), type(y).__name__, y_bits, reencoded]
    if op == 'jd':
        return [stored(JSON.encode(JSON.decode(bytes.fromhex(args[0])))).hex()]
    if op == 'jp':
        return [stored(JSON.encode(evaluate(args[0]))).hex()]
    if op == 'nd':
        return [str(NUMERIC.decode(bytes.fromhex(args[0])))]
    if op == 'ne':
        return [stored(NUMERIC.encode(int(args[0]))).hex()]
    if op == 'pf':
        x = double(args[0])
        return [stored(PICKLE.encode(x)).hex(), canon(PICKLE.decode(bytes.fromhex(args[1])))]
    if op == 'pp':
        value = evaluate(args[0])
        data = PICKLE.encode(value) if args[1] == 'redisext' else pickle.dumps(value, int(args[1]))
        return [data.hex(), canon(value)]
    if op == 'pl':
        return [canon(PICKLE.decode(bytes.fromhex(args[0])))]
    raise ValueError('unknown request ' + op)


def main():
    out = sys.stdout
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == 'flush':
            out.flush()
            continue
        try:
            out.write('ok ' + ' '.join(answer(parts[0], parts[1:])) + '\n')
        except Exception as error:  # the Rust side compares failures too
            out.write('err ' + ('%s: %s' % (type(error).__name__, error)).encode()[:300].hex() + '\n')
    out.flush()


if __name__ == '__main__':
    main()
