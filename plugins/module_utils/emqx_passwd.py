# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Password hashes as EMQX 4.4.4's auth plugins check them (emqx_passwd).

``auth.mysql.password_hash`` names the scheme:

* ``plain``, ``md5``, ``sha``, ``sha256``, ``sha512``: the lowercase hex digest
  of the password;
* ``salt,<hash>`` and ``<hash>,salt``: the digest of salt + password or
  password + salt, the salt in the ``salt`` column;
* ``bcrypt``: a bcrypt hash; 4.4.4 takes the salt from its first 29 characters;
* ``salt,bcrypt``: bcrypt with the salt in the ``salt`` column;
* ``pbkdf2,<mac>,<iterations>,<dklen>``: the hex PBKDF2 of the password with
  the salt column.

A scheme with a salt needs an auth query that selects ``password, salt``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

DIGESTS = ("plain", "md5", "sha", "sha256", "sha512")
PBKDF2_MACS = ("md4", "md5", "sha", "sha224", "sha256", "sha384", "sha512")
_BCRYPT_SALT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{22}$")


class PasswordHashError(ValueError):
    """A password_hash value 4.4.4 does not accept."""


def parse(value):
    """The scheme of a password_hash value as a tuple; raises PasswordHashError."""
    if re.search(r"\s", str(value)):
        raise PasswordHashError("password_hash %r has a space; 4.4.4 splits it on commas and does not "
                                "trim the parts" % (value,))
    parts = tuple(str(value).split(","))
    if len(parts) == 1 and parts[0] in DIGESTS + ("bcrypt",):
        return parts
    if len(parts) == 2 and "salt" in parts and (set(parts) - {"salt"}) <= set(DIGESTS + ("bcrypt",)) \
            and parts != ("salt", "salt"):
        return parts
    if len(parts) == 4 and parts[0] == "pbkdf2" and parts[1] in PBKDF2_MACS \
            and parts[2].isdigit() and parts[3].isdigit() and int(parts[2]) > 0 and int(parts[3]) > 0:
        return ("pbkdf2", parts[1], int(parts[2]), int(parts[3]))
    raise PasswordHashError(
        "password_hash %r is not one EMQX 4.4.4 accepts: plain, md5, sha, sha256, sha512, bcrypt, "
        "salt,<hash>, <hash>,salt, salt,bcrypt or pbkdf2,<mac>,<iterations>,<dklen>" % (value,))


def uses_salt(scheme):
    """Whether the scheme reads the salt column (the auth query must select it)."""
    return scheme[0] == "pbkdf2" or len(scheme) == 2


def _bcrypt():
    import bcrypt  # pylint: disable=import-outside-toplevel
    return bcrypt


def _digest(name, data):
    if name == "plain":
        return data.decode("utf-8")
    return hashlib.new("sha1" if name == "sha" else name, data).hexdigest()


def new_salt(scheme):
    """A fresh salt for the scheme (None when it has no salt column)."""
    if not uses_salt(scheme):
        return None
    if "bcrypt" in scheme:
        return _bcrypt().gensalt(prefix=b"2a").decode("ascii")
    return secrets.token_hex(8)


def hash_password(scheme, password, salt=None):
    """The value of the password column for this scheme, password and salt."""
    data = password.encode("utf-8")
    if scheme == ("bcrypt",):
        salt = salt or _bcrypt().gensalt(prefix=b"2a").decode("ascii")
        return _bcrypt().hashpw(data, salt.encode("ascii")).decode("ascii")
    if scheme[0] == "pbkdf2":
        mac, iterations, dklen = scheme[1:]
        return hashlib.pbkdf2_hmac("sha1" if mac == "sha" else mac, data, salt.encode("utf-8"),
                                   iterations, dklen).hex()
    if "bcrypt" in scheme:
        return _bcrypt().hashpw(data, salt.encode("ascii")).decode("ascii")
    if len(scheme) == 2:
        salted = salt.encode("utf-8") + data if scheme[0] == "salt" else data + salt.encode("utf-8")
        return _digest(scheme[1] if scheme[0] == "salt" else scheme[0], salted)
    return _digest(scheme[0], data)


def matches(scheme, stored, salt, password):
    """Whether a row (password column, salt column) lets this password in, as 4.4.4 checks it."""
    if stored is None:
        return False
    try:
        if scheme == ("bcrypt",):
            computed = hash_password(scheme, password, stored[:29])
        elif uses_salt(scheme):
            if salt is None or ("bcrypt" in scheme and not _BCRYPT_SALT.match(salt)):
                return False
            computed = hash_password(scheme, password, salt)
        else:
            computed = hash_password(scheme, password)
    except ValueError:
        return False
    return hmac.compare_digest(computed.encode("utf-8"), str(stored).encode("utf-8"))
