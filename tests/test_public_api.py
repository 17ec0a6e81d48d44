import sidecar


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in vars(sidecar) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(sidecar, name)).__name__ == "module"}
    assert sidecar.__all__ == sorted(sidecar.__all__)
    assert set(sidecar.__all__) - {"__version__"} == public - modules
