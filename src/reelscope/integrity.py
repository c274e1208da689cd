"""Evidence integrity: a job's manifest (the original's SHA-256 and every artifact's) signed, and an
exported folder checked against it (`reelscope verify DIR`).

What is signed is a short statement naming the manifest by its SHA-256 (KMS signs at most 4 KB
of raw message): manifest.sig.json, beside the manifest, holds the statement, the signature
(ECDSA P-256 over SHA-256) and the public key. The key is a KMS asymmetric key in AWS
(REELSCOPE_SIGNING_KEY_ID; the private half never leaves KMS) and a key in the state folder
locally. The public key a folder carries proves only that the folder is whole: to prove who
signed it, compare its fingerprint (verify prints it) with the deployment's (GET /signing-key),
or give verify the deployment's key (--key)."""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reelscope.artifacts import sha256_file
from reelscope.errors import ReelscopeError
from reelscope.settings import Settings

SIGNATURE, MANIFEST = "manifest.sig.json", "manifest.json"
ALGORITHM = "ECDSA_SHA_256"
LOCAL_KEY = "signing-key.private.pem"


def _canonical(statement: dict) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(public_pem: bytes) -> str:
    """SHA-256 of the key's DER form, as hex: what to compare with the deployment's."""
    key = serialization.load_pem_public_key(public_pem)
    return hashlib.sha256(key.public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


class LocalSigner:
    """An EC P-256 key made once in the state folder (0600), under a lock: jobs signing at once share it."""

    def __init__(self, state_dir: Path):
        path = Path(state_dir) / LOCAL_KEY
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
                partial = path.with_suffix(".partial")
                partial.write_bytes(pem)
                partial.chmod(0o600)
                partial.replace(path)
        self._key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        self.public_pem = self._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = f"local:{fingerprint(self.public_pem)[:16]}"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


class KmsSigner:
    def __init__(self, key_id: str, kms):
        self.key_id, self._kms = key_id, kms
        der = kms.get_public_key(KeyId=key_id)["PublicKey"]
        self.public_pem = serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, message: bytes) -> bytes:
        return self._kms.sign(KeyId=self.key_id, Message=message, MessageType="RAW",
                              SigningAlgorithm=ALGORITHM)["Signature"]


@functools.cache
def signer(settings: Settings):
    """The process's signer (KMS's public key read, or the local key loaded, once)."""
    if settings.signing_key_id:
        import boto3
        return KmsSigner(settings.signing_key_id, boto3.client("kms"))
    return LocalSigner(Path(settings.state_dir))


def sign_manifest(manifest_text: str, job_id: str, source_sha256: str, sign_with) -> dict:
    """manifest.sig.json's content for this manifest."""
    statement = {"job_id": job_id, "manifest": MANIFEST, "manifest_sha256": hashlib.sha256(manifest_text.encode()).hexdigest(),
                 "source_sha256": source_sha256, "signed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "key_id": sign_with.key_id}
    return {"statement": statement, "algorithm": ALGORITHM, "public_key": sign_with.public_pem.decode(),
            "signature": base64.b64encode(sign_with.sign(_canonical(statement))).decode()}


@dataclass
class Verdict:
    key_fingerprint: str = ""
    problems: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_folder(folder: Path, public_key: Path | None = None) -> Verdict:
    """Check an exported job folder: the signature over the statement, the manifest against the
    statement, every artifact against the manifest (size and SHA-256), and no file the manifest
    does not list. Each problem names its file."""
    folder = Path(folder)
    verdict = Verdict()
    for needed in (MANIFEST, SIGNATURE):
        if not (folder / needed).is_file():
            raise ReelscopeError(f"{folder / needed}: missing; a folder exported by `reelscope process --out` has it")
    try:
        signed = json.loads((folder / SIGNATURE).read_text(encoding="utf-8"))
        pem = Path(public_key).read_bytes() if public_key else signed["public_key"].encode()
        key = serialization.load_pem_public_key(pem)
        statement, signature = signed["statement"], base64.b64decode(signed["signature"])
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ReelscopeError(f"{folder / SIGNATURE} or its key cannot be read: {err}") from None
    verdict.key_fingerprint = fingerprint(pem)
    try:
        key.verify(signature, _canonical(statement), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        verdict.problems.append(f"{SIGNATURE}: the signature does not match its statement and key")
    if sha256_file(folder / MANIFEST) != statement.get("manifest_sha256"):
        verdict.problems.append(f"{MANIFEST}: changed (its SHA-256 is not the signed one)")
        return verdict  # the manifest's list cannot be trusted to judge the rest
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("source", {}).get("sha256") != statement.get("source_sha256"):
        verdict.problems.append(f"{MANIFEST}: the original's SHA-256 is not the signed one")
    listed = {a["path"]: a for a in manifest.get("artifacts", [])}
    for path, artifact in sorted(listed.items()):
        file = folder / path
        if not file.is_file():
            verdict.problems.append(f"{path}: missing")
        elif file.stat().st_size != artifact["size_bytes"] or sha256_file(file) != artifact["sha256"]:
            verdict.problems.append(f"{path}: changed")
        verdict.checked += 1
    own = {MANIFEST, SIGNATURE}
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = file.relative_to(folder).as_posix()
        if relative not in listed and relative not in own:
            verdict.problems.append(f"{relative}: added (not in the manifest)")
    return verdict
