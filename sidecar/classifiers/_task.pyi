from collections.abc import Mapping

def reader(
    words: Mapping[bytes, bytes],
    classes: bytes,
    punctuation: bytes,
    head: int,
    tail: int,
    short: int,
    line: int,
    marks: tuple[bytes, ...],
    labels: tuple[bytes, ...],
    names: tuple[str, ...],
    /,
) -> object: ...
def scan(
    reader: object, text: str, /
) -> tuple[
    str,
    str,
    str,
    bytes,
    str,
    str,
    str,
    str,
    bool,
    bool,
    bool,
    bool,
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    str,
]: ...
def items(text: str, end: int, /) -> tuple[int, int]: ...
