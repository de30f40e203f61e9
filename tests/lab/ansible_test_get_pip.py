"""Stand-in for ansible-test's pip bootstrap script, for machines without its download host.

`ansible-test sanity --venv` creates empty virtual environments and fetches a
get-pip script from a host these machines cannot reach. The Makefile copies
this file to the path ansible-test caches that script at. ansible-test runs it
with pip's install arguments; it seeds pip with the interpreter's own ensurepip
and then installs the requested versions from the package index, as the
original does from its embedded copy.
"""

import subprocess
import sys

# Options only the original get-pip script understands.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install"] + [a for a in sys.argv[1:] if a not in GET_PIP_ONLY])
