"""Password hashes against values computed the way EMQX 4.4.4 computes them."""

from __future__ import annotations

import hashlib

import bcrypt
import pytest
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_passwd as p

# The 4.4 docs' sample row: user emqx, password public, sha256.
PUBLIC_SHA256 = "efa1f375d76194fa51a3556a97e641e61685f914d446979da50a551a4333ffd7"


@pytest.mark.parametrize(("value", "scheme"), [
    ("sha256", ("sha256",)), ("plain", ("plain",)), ("bcrypt", ("bcrypt",)),
    ("salt,sha256", ("salt", "sha256")), ("md5,salt", ("md5", "salt")), ("salt,bcrypt", ("salt", "bcrypt")),
    ("pbkdf2,sha256,1000,20", ("pbkdf2", "sha256", 1000, 20)),
])
def test_parse(value, scheme):
    assert p.parse(value) == scheme


@pytest.mark.parametrize("value", ["sha384", "salt, sha256", "salt,salt", "pbkdf2,sha256,1000",
                                   "pbkdf2,whirlpool,1000,20", "pbkdf2,sha256,0,20", "a,b,c", ""])
def test_parse_refuses(value):
    with pytest.raises(p.PasswordHashError):
        p.parse(value)


def test_docs_sample_and_plain_digests():
    assert p.hash_password(("sha256",), "public") == PUBLIC_SHA256
    assert p.hash_password(("md5",), "public") == hashlib.md5(b"public").hexdigest()
    assert p.hash_password(("sha",), "public") == hashlib.sha1(b"public").hexdigest()
    assert p.hash_password(("plain",), "public") == "public"
    assert p.matches(("sha256",), PUBLIC_SHA256, None, "public")
    assert not p.matches(("sha256",), PUBLIC_SHA256, None, "Public")
    assert not p.uses_salt(("sha256",)) and p.new_salt(("sha256",)) is None


def test_salted_digests_put_the_salt_where_the_scheme_says():
    assert p.hash_password(("salt", "sha256"), "pw", "s4lt") == hashlib.sha256(b"s4ltpw").hexdigest()
    assert p.hash_password(("sha256", "salt"), "pw", "s4lt") == hashlib.sha256(b"pws4lt").hexdigest()
    salt = p.new_salt(("salt", "sha256"))
    assert len(salt) == 16 and salt != p.new_salt(("salt", "sha256"))
    stored = p.hash_password(("salt", "sha256"), "pw", salt)
    assert p.matches(("salt", "sha256"), stored, salt, "pw")
    assert not p.matches(("salt", "sha256"), stored, None, "pw")
    assert not p.matches(("sha256", "salt"), stored, salt, "pw")


def test_pbkdf2():
    expected = hashlib.pbkdf2_hmac("sha256", b"pw", b"s4lt", 1000, 20).hex()
    assert p.hash_password(("pbkdf2", "sha256", 1000, 20), "pw", "s4lt") == expected
    assert p.matches(("pbkdf2", "sha256", 1000, 20), expected, "s4lt", "pw")
    assert len(expected) == 40


def test_bcrypt_takes_the_salt_from_the_hash():
    stored = p.hash_password(("bcrypt",), "pw")
    assert stored.startswith("$2a$") and bcrypt.checkpw(b"pw", stored.encode())
    assert p.matches(("bcrypt",), stored, None, "pw")
    assert not p.matches(("bcrypt",), stored, None, "px")
    assert not p.matches(("bcrypt",), "not-a-bcrypt-hash", None, "pw")


def test_salt_bcrypt_uses_the_salt_column():
    salt = p.new_salt(("salt", "bcrypt"))
    assert len(salt) == 29 and len(salt) <= 35  # the salt column is varchar(35)
    stored = p.hash_password(("salt", "bcrypt"), "pw", salt)
    assert stored.startswith(salt) and p.matches(("salt", "bcrypt"), stored, salt, "pw")
    assert not p.matches(("salt", "bcrypt"), stored, "nonsense", "pw")
