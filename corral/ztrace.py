import os, time
_f = None
_on = os.path.isdir("/tmp/ctrace")
def mark(tag, ids):
    global _f
    if not _on:
        return
    if _f is None:
        _f = open(f"/tmp/ctrace/{os.getpid()}", "a", buffering=1)
    t = time.monotonic()
    _f.write("".join(f"{t:.6f} {tag} {i}\n" for i in ids))
