"""Certificates for the twin's TLS listeners and mTLS users, made with the ``openssl`` command.

Strimzi keeps two CAs per cluster (``<cluster>-cluster-ca``: signs the brokers' certificates;
``<cluster>-clients-ca``: signs the KafkaUsers' certificates) and gives each broker a keystore
whose certificate names every address clients may dial. The twin does the same with openssl (the
project installs no Python crypto library): EC P-256 keys, which take milliseconds to make where
RSA takes a noticeable fraction of a second on a busy 2-core box. Strimzi uses RSA 4096; nothing a
client checks depends on the key type.

Files stay in the sandbox's state directory; keystores are PKCS#12 with a random password, as
Strimzi's ``user.p12`` / ``user.password`` pair.
"""

from __future__ import annotations

import secrets
import shutil
import string
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.sandbox.errors import SandboxError

CA_DAYS = 365  # Strimzi's default validityDays for its CAs
CERT_DAYS = 365
_ALPHABET = string.ascii_letters + string.digits


def random_password(length: int = 32) -> str:
    """Alphanumeric, as Strimzi's PasswordGenerator makes them (32 characters by default)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def require_openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        raise SandboxError("TLS listeners and KafkaUsers need the `openssl` command; install it "
                           "(Debian/Ubuntu: apt-get install openssl; `make setup` does it)")
    return path


def _openssl(*args: str, stdin: str | None = None) -> None:
    proc = subprocess.run([require_openssl(), *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise SandboxError(f"openssl {args[0]} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA's key and self-signed certificate, kept as ``ca.key`` / ``ca.crt`` in ``directory``."""

    directory: Path

    @property
    def key_path(self) -> Path:
        return self.directory / "ca.key"

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.crt"

    def cert_pem(self) -> str:
        return self.cert_path.read_text(encoding="ascii")

    def key_pem(self) -> str:
        return self.key_path.read_text(encoding="ascii")

    def ensure(self, common_name: str) -> CertificateAuthority:
        """Create the CA unless it exists (a CA lives as long as its cluster)."""
        if self.cert_path.is_file() and self.key_path.is_file():
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        _new_key(self.key_path)
        _openssl("req", "-x509", "-new", "-key", str(self.key_path), "-out", str(self.cert_path),
                 "-days", str(CA_DAYS), "-subj", f"/O=io.strimzi/CN={common_name}",
                 "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self

    def issue(self, directory: Path, common_name: str, *, sans: Sequence[str] = (),
              organization: str | None = None) -> IssuedCertificate:
        """A key and a certificate signed by this CA, plus a PKCS#12 keystore of both."""
        directory.mkdir(parents=True, exist_ok=True)
        issued = IssuedCertificate(directory)
        _new_key(issued.key_path)
        subject = (f"/O={organization}" if organization else "") + f"/CN={common_name}"
        csr = directory / "cert.csr"
        _openssl("req", "-new", "-key", str(issued.key_path), "-out", str(csr), "-subj", subject)
        ext = directory / "cert.ext"
        lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
                 "extendedKeyUsage=serverAuth,clientAuth"]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n", encoding="ascii")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert_path), "-CAkey", str(self.key_path),
                 "-CAcreateserial", "-out", str(issued.cert_path), "-days", str(CERT_DAYS), "-extfile", str(ext))
        password = random_password()
        _openssl("pkcs12", "-export", "-in", str(issued.cert_path), "-inkey", str(issued.key_path),
                 "-certfile", str(self.cert_path), "-name", common_name, "-out", str(issued.p12_path),
                 "-passout", "stdin", stdin=password + "\n")
        issued.password_path.write_text(password, encoding="ascii")
        issued.password_path.chmod(0o600)
        csr.unlink(missing_ok=True)
        ext.unlink(missing_ok=True)
        return issued


@dataclass(frozen=True)
class IssuedCertificate:
    """``tls.key``, ``tls.crt``, ``keystore.p12`` and its ``keystore.password`` in ``directory``."""

    directory: Path

    @property
    def key_path(self) -> Path:
        return self.directory / "tls.key"

    @property
    def cert_path(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def p12_path(self) -> Path:
        return self.directory / "keystore.p12"

    @property
    def password_path(self) -> Path:
        return self.directory / "keystore.password"

    def exists(self) -> bool:
        return all(p.is_file() for p in (self.key_path, self.cert_path, self.p12_path, self.password_path))

    def password(self) -> str:
        return self.password_path.read_text(encoding="ascii")
