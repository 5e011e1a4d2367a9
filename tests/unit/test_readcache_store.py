"""The read path's stores: bounded in entries and bytes (keys included), valid for one version"""

from api.readcache.store import ENTRY_OVERHEAD, Entry, VersionedStore, footprint


def entry(body: bytes) -> Entry:
    return Entry(body, '"e"', None, "application/json")


def test_a_store_is_bounded_in_entries():
    store = VersionedStore(max_entries=3, max_bytes=10**6)
    store.sync(1)
    for n in range(4):
        store.put(("page", n), entry(b"x"), 1)
    assert store.get(("page", 0), 1) is None  # the least recently used went first
    assert all(store.get(("page", n), 1) is not None for n in (1, 2, 3))


def test_a_store_is_bounded_in_bytes_counting_bodies_and_keys():
    one = footprint(("page", 0)) + footprint(entry(b"x" * 40)) + ENTRY_OVERHEAD
    store = VersionedStore(max_entries=100, max_bytes=2 * one)
    store.sync(1)
    for n in range(3):
        store.put(("page", n), entry(b"x" * 40), 1)
    assert store.get(("page", 0), 1) is None and store.bytes <= 2 * one
    assert store.get(("page", 2), 1) is not None


def test_long_keys_count_against_the_bound_as_bodies_do():
    """Hostile unique headers make long keys: with tiny bodies the store still stays bounded."""
    store = VersionedStore(max_entries=10_000, max_bytes=100_000)
    store.sync(1)
    for n in range(1_000):
        store.put(("replay", "/v1/treatments", "a" * 4000 + str(n)), entry(b"{}"), 1)
    assert store.bytes <= 100_000
    assert len(store.entries) < 30


def test_replacing_an_entry_keeps_the_count_exact():
    store = VersionedStore(max_entries=10, max_bytes=10**6)
    store.sync(1)
    store.put("page", entry(b"y" * 100), 1)
    store.put("page", entry(b"y" * 10), 1)
    assert store.bytes == footprint("page") + footprint(entry(b"y" * 10)) + ENTRY_OVERHEAD
    store.sync(2)
    assert store.bytes == 0 and store.get("page", 2) is None


def test_a_reader_never_gets_an_entry_of_a_version_other_than_the_one_it_read():
    """A request that read version 1 finds nothing once the store moved to 2, and the other way
    round: whatever threads interleave, no one is served another version's entry."""
    store = VersionedStore(max_entries=10, max_bytes=10**6)
    store.sync(1)
    store.put("page", entry(b"old"), 1)
    store.sync(2)
    store.put("page", entry(b"new"), 2)
    assert store.get("page", 1) is None
    store.sync(1)  # a late request moves it back
    store.put("page", entry(b"old"), 1)
    assert store.get("page", 2) is None


def test_an_answer_built_at_an_older_version_is_not_kept():
    store = VersionedStore(max_entries=10, max_bytes=10**6)
    store.sync(2)
    store.put("page", entry(b"old"), 1)
    assert store.get("page", 2) is None and store.bytes == 0
