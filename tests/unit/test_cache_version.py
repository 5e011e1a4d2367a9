"""The host's shared cache version: a generation and a write lease in a memory-mapped file"""

import multiprocessing
import time

from api.cache_version import LAYOUT, HostVersion, default_path


def test_a_new_file_starts_at_generation_zero_with_no_lease(tmp_path):
    assert HostVersion(tmp_path / "v", 30).current() == 0


def test_a_write_moves_the_generation_on_before_and_after_its_commit(tmp_path):
    version = HostVersion(tmp_path / "v", 0)
    version.begin_write()
    assert version.current() == 1
    version.end_write()
    assert version.current() == 2


def test_while_the_lease_runs_there_is_no_generation_to_trust(tmp_path):
    version = HostVersion(tmp_path / "v", 0.2)
    version.begin_write()
    assert version.current() is None
    version.end_write()
    assert version.current() is None  # the lease runs its full length
    time.sleep(0.25)
    assert version.current() == 2


def test_every_process_on_the_file_sees_the_same_version(tmp_path):
    writer, reader = HostVersion(tmp_path / "v", 0), HostVersion(tmp_path / "v", 0)
    writer.end_write()
    assert reader.current() == 1


def test_a_longer_lease_is_never_shortened_by_a_shorter_one(tmp_path):
    long, short = HostVersion(tmp_path / "v", 30), HostVersion(tmp_path / "v", 0)
    long.begin_write()
    short.begin_write()
    assert short.current() is None


def test_a_lease_left_from_before_a_reboot_is_cleared(tmp_path):
    path = tmp_path / "v"
    path.write_bytes(LAYOUT.pack(7, time.monotonic_ns() + 10 * 3600 * 10**9))
    assert HostVersion(path, 30).current() == 8


def test_a_replaced_file_is_noticed_and_mapped_afresh(tmp_path, monkeypatch):
    monkeypatch.setattr("api.cache_version.CHECK_FILE_NS", 0)
    path = tmp_path / "v"
    reader = HostVersion(path, 0)
    reader.end_write()
    before = reader.version()
    path.unlink()  # a cleaner, or a logout's IPC removal
    writer = HostVersion(path, 0)
    writer.end_write()
    assert reader.current() is None  # noticed: this read asks the database
    after = reader.version()
    assert after == ("host", writer.identity, 1) and after != before


def _bump(path, times):
    version = HostVersion(path, 0)
    for _ in range(times):
        version.end_write()


def test_writers_in_several_processes_never_lose_a_step(tmp_path):
    path = tmp_path / "v"
    HostVersion(path, 0)
    processes = [
        multiprocessing.get_context("fork").Process(target=_bump, args=(path, 300)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    assert HostVersion(path, 0).current() == 1200


def test_each_database_has_its_own_file():
    first = default_path("postgresql+psycopg://db/a")
    assert first == default_path("postgresql+psycopg://db/a")
    assert first != default_path("postgresql+psycopg://db/b")
