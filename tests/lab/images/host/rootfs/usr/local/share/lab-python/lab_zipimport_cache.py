"""Lab hosts only: keep what zipimport compiles, by content.

Ansible sends every module with its module_utils as a zip, and Python compiles
sources imported from a zip on every run (it caches bytecode only for files
on disk): about 0.13 s of CPU per module run with ansible-core 2.19, on a
machine where the lab's two cores are the limit. This keeps each compiled
source under its SHA-256, so a source is compiled once per lab host. What
runs is unchanged: the same source gives the same code.
"""

import hashlib
import marshal
import os
import sys
import zipimport

# One directory per user: root never loads code another user wrote.
_DIR = os.path.join("/var/cache/lab-pycode", "%d-%s" % (os.getuid(), sys.implementation.cache_tag))
_compile = getattr(zipimport, "_compile_source", None)


def _compile_source(pathname, source):
    path = os.path.join(_DIR, hashlib.sha256(source).hexdigest())
    try:
        with open(path, "rb") as cached:
            return marshal.load(cached)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile(pathname, source)
    try:
        os.makedirs(_DIR, mode=0o700, exist_ok=True)
        partial = "%s.%d" % (path, os.getpid())
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)
    except OSError:
        pass
    return code


if _compile is not None:
    zipimport._compile_source = _compile_source
