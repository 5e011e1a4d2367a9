"""List cursors: opaque, round-tripping, and refusing anything the API did not write"""

import pytest

from api.pagination import decode_cursor, encode_cursor


@pytest.mark.parametrize(
    ("name", "row_id"), [("Botulinum toxin", 1), ("Ästhetik — peel/“quoted”", 2_147_483_647)]
)
def test_a_cursor_names_the_place_it_was_made_for(name, row_id):
    cursor = encode_cursor(name, row_id)
    assert cursor.replace("-", "").replace("_", "").isalnum()  # URL-safe as it is
    assert decode_cursor(cursor) == (name, row_id)


@pytest.mark.parametrize(
    "cursor",
    ["", "***", "WzEsMl0", "WyJhIiwiYiJd", "WyJhIiwwXQ", "WyJhIiwxLDJd", "eyJhIjoxfQ", "WyJhIiwxLjVd",
     "WyJhIix0cnVlXQ", "WyJcdTAwMDAiLDFd", encode_cursor("a", 1) + "A" * 400],
)  # fmt: skip
def test_anything_else_is_refused(cursor):
    with pytest.raises(ValueError):
        decode_cursor(cursor)
