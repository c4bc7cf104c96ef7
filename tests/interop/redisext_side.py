"""The Python side of tests/python_interop.rs: Python redisext 2.0.2 itself.

    python redisext_side.py write <redis-url> <model>
        writes the fixture of <model> under keys "py:<model>:<serializer>"
    python redisext_side.py check <redis-url> <model>
        reads what Rust wrote under "rs:<model>:<serializer>", checks it against
        the same fixture, then uses it across languages (membership, removal, pops)

The fixture (SAMPLES, SCORES, PRIORITIES, FIELDS) must match the one in
tests/python_interop.rs. Exits non-zero with a message when a check fails.
"""

import pickle
import sys

import redisext.counter
import redisext.hashmap
import redisext.lock
import redisext.pool
import redisext.queue
import redisext.serializer
import redisext.stack

SAMPLES = {
    'json': [
        {'name': 'Zoë', 'tags': ['a', 'b'], 'score': 0.1},
        {'name': '日本', 'tags': [], 'score': 1e16},
        {'name': 'plain', 'tags': ['x'], 'score': -2.5},
    ],
    'string': ['héllo wörld', '日本語 ✓ \U0001F600', 'plain ascii'],
    'numeric': [42, -7, 9007199254740993],
    'pickle': [
        {'name': 'Zoë', 'tags': ['a', 'b'], 'score': 0.1},
        {'name': '日本', 'tags': [], 'score': 1e16},
        {'name': 'plain', 'tags': ['x'], 'score': -2.5},
    ],
}
SERIALIZERS = {
    'json': redisext.serializer.JSON,
    'string': redisext.serializer.String,
    'numeric': redisext.serializer.Numeric,
    'pickle': redisext.serializer.Pickle,
}
# Byte-identical encodings across the languages: membership works across them.
BYTE_IDENTICAL = {'json': True, 'string': True, 'numeric': True, 'pickle': False}
SCORES = [1.5, -2.0, 10.0]
PRIORITIES = [3, 1, 2]
FIELDS = ['f0', 'f1', 'clé']
LOCK_EXPIRY = 100

URL = None


def model(base, serializer=None):
    """A redisext model class on the test server, as a Python service declares one."""
    attrs = {'CONNECTION': URL}
    if serializer is not None:
        attrs['SERIALIZER'] = SERIALIZERS[serializer]
    return type(base.__name__, (base,), attrs)


def key(prefix, name, serializer):
    return '%s:%s:%s' % (prefix, name, serializer)


def expect(label, got, want):
    if got != want:
        raise AssertionError('%s: expected %r, got %r' % (label, want, got))


def same_members(label, got, want):
    """Compares unordered collections of possibly unhashable values."""
    expect(label + ' (count)', len(got), len(want))
    for value in want:
        if value not in got:
            raise AssertionError('%s: %r missing from %r' % (label, value, got))


# --- write: the fixture, as Python redisext writes it -------------------------

def write(name):
    if name == 'counter':
        expect('counter incr', model(redisext.counter.Counter, 'numeric')('py:counter').incr(5), 5)
        return
    if name == 'lock':
        expect('lock acquire', model(redisext.lock.Lock)('py:lock').acquire(LOCK_EXPIRY), True)
        return
    for serializer, samples in SAMPLES.items():
        k = key('py', name, serializer)
        if name == 'map':
            model(redisext.hashmap.Map, serializer)(k).set(samples[0])
        elif name == 'hash_map':
            hash_map = model(redisext.hashmap.HashMap, serializer)(k)
            for field, sample in zip(FIELDS, samples):
                hash_map.set(field, sample)
        elif name == 'pool':
            pool = model(redisext.pool.Pool, serializer)(k)
            for sample in samples:
                expect('pool push', pool.push(sample), True)
        elif name == 'sorted_set':
            sorted_set = model(redisext.pool.SortedSet, serializer)(k)
            for sample, score in zip(samples, SCORES):
                expect('sorted set add', sorted_set.add(sample, score), True)
        elif name == 'queue':
            queue = model(redisext.queue.Queue, serializer)(k)
            for n, sample in enumerate(samples):
                expect('queue push', queue.push(sample), n + 1)
        elif name == 'priority_queue':
            priority_queue = model(redisext.queue.PriorityQueue, serializer)(k)
            for sample, priority in zip(samples, PRIORITIES):
                priority_queue.push(sample, priority)
        elif name == 'stack':
            stack = model(redisext.stack.Stack, serializer)(k)
            for sample in samples:
                stack.push(sample)
        else:
            raise SystemExit('unknown model %r' % name)


# --- check: what Rust wrote, read and used by Python redisext ------------------

def check(name):
    if name == 'counter':
        counter = model(redisext.counter.Counter, 'numeric')('rs:counter')
        expect('counter get', counter.get(), 5)
        expect('counter incr', counter.incr(3), 8)
        return
    if name == 'lock':
        check_lock()
        return
    for serializer, samples in SAMPLES.items():
        label = '%s/%s' % (name, serializer)
        k = key('rs', name, serializer)
        identical = BYTE_IDENTICAL[serializer]
        if name == 'map':
            expect(label + ' get', model(redisext.hashmap.Map, serializer)(k).get(), samples[0])
        elif name == 'hash_map':
            hash_map = model(redisext.hashmap.HashMap, serializer)(k)
            for field, sample in zip(FIELDS, samples):
                expect(label + ' get ' + field, hash_map.get(field), sample)
        elif name == 'pool':
            pool = model(redisext.pool.Pool, serializer)(k)
            same_members(label + ' members', pool.members(), samples)
            for sample in samples:
                expect(label + ' contains %r' % (sample,), pool.contains(sample), identical)
            popped = [pool.pop() for _ in samples]
            same_members(label + ' pops', popped, samples)
            expect(label + ' pop of an empty pool', pool.pop(), None)
        elif name == 'sorted_set':
            check_sorted_set(label, model(redisext.pool.SortedSet, serializer)(k), samples, identical)
        elif name == 'queue':
            queue = model(redisext.queue.Queue, serializer)(k)
            expect(label + ' size', queue.size(), len(samples))
            expect(label + ' items', queue.items(), list(reversed(samples)))
            expect(label + ' pops (FIFO)', [queue.pop() for _ in samples], samples)
        elif name == 'priority_queue':
            priority_queue = model(redisext.queue.PriorityQueue, serializer)(k)
            order = [index for _, index in sorted(zip(PRIORITIES, range(3)))]
            expect(label + ' pops', [priority_queue.pop() for _ in samples], [samples[i] for i in order])
        elif name == 'stack':
            stack = model(redisext.stack.Stack, serializer)(k)
            expect(label + ' pops (LIFO)', [stack.pop() for _ in samples], list(reversed(samples)))
        else:
            raise SystemExit('unknown model %r' % name)
        print('ok', label)


def check_sorted_set(label, sorted_set, samples, identical):
    by_score = [samples[i] for _, i in sorted(zip(SCORES, range(3)))]
    highest_first = list(reversed(by_score))
    expect(label + ' members', sorted_set.members(), highest_first)
    expect(label + ' members with scores', sorted_set.members(with_scores=True),
           [(score, sample) for score, sample in sorted(zip(SCORES, samples), key=lambda p: -p[0])])
    expect(label + ' members_by_score', sorted_set.members_by_score(), by_score)
    expect(label + ' members_by_score(0, 10)', sorted_set.members_by_score(0, 10), [samples[0], samples[2]])
    expect(label + ' length', sorted_set.length('-inf', '+inf'), 3)
    for sample in samples:
        expect(label + ' contains %r' % (sample,), sorted_set.contains(sample), identical)
    # Removal by value: the bytes Python encodes must be the bytes Rust stored.
    expect(label + ' rem', sorted_set.rem(samples[1]), identical)
    expect(label + ' length after rem', sorted_set.length('-inf', '+inf'), 2 if identical else 3)


def check_lock():
    Lock = model(redisext.lock.Lock)
    rust_held = Lock('rs:lock')
    # Held by Rust (its value is a token, not ''): Python sees it held.
    expect('lock exists', rust_held.exists(), True)
    expect('lock acquire while Rust holds it', rust_held.acquire(LOCK_EXPIRY), False)
    ttl = rust_held.ttl()
    if not 0 < ttl <= LOCK_EXPIRY:
        raise AssertionError('lock ttl: expected 1..%d, got %r' % (LOCK_EXPIRY, ttl))
    # Python's release is a bare DEL: it frees any lock, whoever holds it.
    expect('python release of a Rust-held lock', rust_held.release(), True)
    expect('lock exists after release', rust_held.exists(), False)
    # The Python-held lock, which Rust failed to release, is still Python's.
    python_held = Lock('py:lock')
    expect('python-held lock still held', python_held.exists(), True)
    expect('python release of its own lock', python_held.release(), True)
    print('ok lock')


def main():
    global URL
    if len(sys.argv) != 4 or sys.argv[1] not in ('write', 'check'):
        raise SystemExit(__doc__)
    action, URL, name = sys.argv[1:]
    if redisext.__version__ != '2.0.2':
        raise SystemExit('expected redisext 2.0.2, found %s' % redisext.__version__)
    (write if action == 'write' else check)(name)


if __name__ == '__main__':
    main()
