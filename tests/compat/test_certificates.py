"""Device certificates with boto3 and awscli: CreateKeysAndCertificate, CreateCertificateFromCsr,
DescribeCertificate, ListCertificates(ByCA), UpdateCertificate, DeleteCertificate,
GetRegistrationCode, RegisterCACertificate and its siblings, RegisterCertificate(WithoutCA), and
the thing principals (AttachThingPrincipal, ListThingPrincipals(V2), ListPrincipalThings(V2),
DetachThingPrincipal). Certificates and CAs for registration are made with the openssl CLI;
every refusal is checked for its exact error and for changing nothing."""

import base64
import datetime
import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from conftest import error_code

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'


# --- helpers --------------------------------------------------------------------------------

def pem_der(pem):
    """The DER of the first PEM block."""
    body = re.search(r"-----BEGIN [A-Z ]+-----(.*?)-----END", pem, re.S).group(1)
    return base64.b64decode("".join(body.split()))


def cert_id(pem):
    return hashlib.sha256(pem_der(pem)).hexdigest()


def openssl(*args, input=None, cwd=None):
    proc = subprocess.run(["openssl", *args], input=input, capture_output=True, text=True, cwd=cwd, timeout=60)
    assert proc.returncode == 0, f"openssl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


class Pki:
    """CAs and certificates made with the openssl CLI in a temp dir."""

    def __init__(self, root: Path):
        self.root = root
        self.n = 0

    def _path(self, stem):
        self.n += 1
        return self.root / f"{stem}-{self.n}"

    def ca(self, cn):
        p = self._path("ca")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{p}.key", "-out", f"{p}.pem",
                "-days", "30", "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return p

    def leaf(self, ca, cn, days=10):
        """A certificate for a new EC key, signed by `ca`; returns its PEM."""
        p = self._path("leaf")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{p}.key", "-subj", f"/CN={cn}", "-out", f"{p}.csr")
        openssl("x509", "-req", "-in", f"{p}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-set_serial", str(1000 + self.n), "-days", str(days), "-out", f"{p}.pem")
        return Path(f"{p}.pem").read_text()

    def csr(self, cn):
        p = self._path("csr")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{p}.key", "-subj", f"/CN={cn}", "-out", f"{p}.csr")
        return Path(f"{p}.csr").read_text()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def verify_with(ca_file, pem, tmp_path):
    f = tmp_path / f"cert-{cert_id(pem)[:8]}.pem"
    f.write_text(pem)
    proc = subprocess.run(["openssl", "verify", "-CAfile", str(ca_file), str(f)], capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def all_certificates(iot, **kw):
    out, marker = [], None
    while True:
        page = iot.list_certificates(**kw, **({"marker": marker} if marker else {}))
        out += page["certificates"]
        marker = page.get("nextMarker")
        if not marker:
            return out


def status(iot, cid):
    return iot.describe_certificate(certificateId=cid)["certificateDescription"]["status"]


def register_ca(drover, iot, pki, name="Fleet CA", active=True):
    ca = pki.ca(name)
    code = iot.get_registration_code()["registrationCode"]
    verification = pki.leaf(ca, code)
    out = iot.register_ca_certificate(caCertificate=Path(f"{ca}.pem").read_text(),
                                      verificationCertificate=verification, setAsActive=active)
    return ca, out


# --- issuing --------------------------------------------------------------------------------

def test_create_keys_and_certificate(drover, iot, tmp_path):
    out = iot.create_keys_and_certificate(setAsActive=True)
    cid = out["certificateId"]
    assert cid == cert_id(out["certificatePem"]), "certificateId is the SHA-256 of the DER"
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert out["certificateArn"] == drover.arn("cert", cid)
    assert "BEGIN PUBLIC KEY" in out["keyPair"]["PublicKey"]
    assert "PRIVATE KEY" in out["keyPair"]["PrivateKey"]
    ok, text = verify_with(drover.ca, out["certificatePem"], tmp_path)
    assert ok, text
    # The key pair is RSA-2048 and belongs to the certificate.
    key_file = tmp_path / "device.key"
    key_file.write_text(out["keyPair"]["PrivateKey"])
    assert "2048 bit" in openssl("pkey", "-in", str(key_file), "-noout", "-text")
    cert_file = tmp_path / "device.pem"
    cert_file.write_text(out["certificatePem"])
    assert openssl("x509", "-in", str(cert_file), "-noout", "-pubkey") == openssl("pkey", "-in", str(key_file), "-pubout")

    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["certificateArn"] == out["certificateArn"]
    assert d["certificateId"] == cid
    assert d["status"] == "ACTIVE"
    assert d["certificatePem"] == out["certificatePem"]
    assert d["caCertificateId"] == cert_id(Path(drover.ca).read_text())
    assert d["ownedBy"] == drover.account
    assert d["customerVersion"] == 1
    assert d["generationId"]
    assert d["certificateMode"] == "DEFAULT"
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - d["creationDate"]).total_seconds()) < 300
    assert d["lastModifiedDate"] >= d["creationDate"]
    assert d["validity"]["notBefore"] <= now < d["validity"]["notAfter"]


def test_create_keys_and_certificate_with_awscli_defaults_to_inactive(drover, iot):
    out = drover.aws("create-keys-and-certificate").json
    assert status(iot, out["certificateId"]) == "INACTIVE"
    listed = drover.aws("list-certificates").json["certificates"]
    mine = [c for c in listed if c["certificateId"] == out["certificateId"]]
    assert mine and mine[0]["status"] == "INACTIVE" and mine[0]["certificateArn"] == out["certificateArn"]


def test_create_certificate_from_csr(drover, iot, pki, tmp_path):
    csr = pki.csr("csr-device-1")
    out = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=True)
    assert out["certificateId"] == cert_id(out["certificatePem"])
    ok, text = verify_with(drover.ca, out["certificatePem"], tmp_path)
    assert ok, text
    f = tmp_path / "csr-cert.pem"
    f.write_text(out["certificatePem"])
    assert "CN = csr-device-1" in openssl("x509", "-in", str(f), "-noout", "-subject")
    assert status(iot, out["certificateId"]) == "ACTIVE"


def test_create_certificate_from_a_bad_csr_changes_nothing(drover, iot):
    before = len(all_certificates(iot))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_certificate_from_csr(certificateSigningRequest="-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    assert len(all_certificates(iot)) == before


def test_list_certificates_pages_in_creation_order(drover, iot):
    ids = [iot.create_keys_and_certificate()["certificateId"] for _ in range(3)]
    newest_first = [c["certificateId"] for c in all_certificates(iot, pageSize=2)]
    assert [i for i in newest_first if i in ids] == ids[::-1]
    oldest_first = [c["certificateId"] for c in all_certificates(iot, pageSize=2, ascendingOrder=True)]
    assert [i for i in oldest_first if i in ids] == ids
    page = iot.list_certificates(pageSize=1)
    assert len(page["certificates"]) == 1 and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", page["nextMarker"])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_certificates(marker="bm90IGEgbWFya2Vy")


# --- status changes and deletion ------------------------------------------------------------

def test_update_certificate_status_rules(drover, iot):
    cid = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    assert status(iot, cid) == "INACTIVE"
    iot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["status"] == "ACTIVE" and d["customerVersion"] == 3
    iot.update_certificate(certificateId=cid, newStatus="REVOKED")
    with pytest.raises(iot.exceptions.CertificateStateException) as ei:
        iot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    assert error_code(ei)[0] == 406
    assert status(iot, cid) == "REVOKED"
    with pytest.raises(iot.exceptions.CertificateStateException):
        iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    assert status(iot, cid) == "REVOKED"


def test_update_certificate_refuses_internal_statuses_and_unknown_ids(drover, iot):
    cid = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_certificate(certificateId=cid, newStatus="PENDING_TRANSFER")
    assert status(iot, cid) == "ACTIVE"
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as ei:
        iot.update_certificate(certificateId="0" * 64, newStatus="INACTIVE")
    assert error_code(ei)[0] == 404
    with pytest.raises(drover.iot_raw.exceptions.InvalidRequestException):
        drover.iot_raw.describe_certificate(certificateId="not-an-id")
    drover.aws_error("update-certificate", "--certificate-id", cid, "--new-status", "PENDING_ACTIVATION",
                     code="InvalidRequestException")


def test_delete_certificate_rules(drover, iot):
    out = iot.create_keys_and_certificate(setAsActive=True)
    cid, arn = out["certificateId"], out["certificateArn"]
    with pytest.raises(iot.exceptions.CertificateStateException) as ei:
        iot.delete_certificate(certificateId=cid)
    assert error_code(ei)[0] == 406
    assert status(iot, cid) == "ACTIVE"
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")

    thing = drover.name("delcert")
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=arn)
    with pytest.raises(iot.exceptions.DeleteConflictException) as ei:
        iot.delete_certificate(certificateId=cid, forceDelete=True)
    assert error_code(ei)[0] == 409
    iot.detach_thing_principal(thingName=thing, principal=arn)

    policy = drover.name("delcert-policy")
    iot.create_policy(policyName=policy, policyDocument=POLICY)
    iot.attach_policy(policyName=policy, target=arn)
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_certificate(certificateId=cid)
    assert status(iot, cid) == "INACTIVE"
    assert [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]] == [policy]

    iot.delete_certificate(certificateId=cid, forceDelete=True)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId=cid)
    assert iot.list_targets_for_policy(policyName=policy)["targets"] == []
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_certificate(certificateId=cid)


# --- CA certificates and registration --------------------------------------------------------

def test_registration_code_is_stable(drover, iot):
    code = iot.get_registration_code()["registrationCode"]
    assert re.fullmatch(r"[0-9a-f]{64}", code)
    assert iot.get_registration_code()["registrationCode"] == code
    assert drover.aws("get-registration-code").json["registrationCode"] == code


def test_register_ca_certificate_and_describe(drover, iot, pki):
    ca, out = register_ca(drover, iot, pki, "Described CA")
    ca_pem = Path(f"{ca}.pem").read_text()
    assert out["certificateId"] == cert_id(ca_pem)
    assert out["certificateArn"] == drover.arn("cacert", out["certificateId"])
    d = iot.describe_ca_certificate(certificateId=out["certificateId"])
    desc = d["certificateDescription"]
    assert desc["status"] == "ACTIVE"
    assert desc["autoRegistrationStatus"] == "DISABLE"
    assert desc["certificateMode"] == "DEFAULT"
    assert desc["ownedBy"] == drover.account
    assert desc["customerVersion"] == 1
    assert cert_id(desc["certificatePem"]) == out["certificateId"]
    assert desc["validity"]["notBefore"] < desc["validity"]["notAfter"]
    listed = [c["certificateId"] for c in iot.list_ca_certificates()["certificates"]]
    assert out["certificateId"] in listed
    assert cert_id(Path(drover.ca).read_text()) not in listed, "drover's own CA is not listed"
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as ei:
        iot.register_ca_certificate(caCertificate=ca_pem, verificationCertificate=pki.leaf(ca, iot.get_registration_code()["registrationCode"]))
    assert error_code(ei)[0] == 409


def test_register_ca_certificate_refusals_change_nothing(drover, iot, pki):
    before = iot.list_ca_certificates()["certificates"]
    ca = pki.ca("Refused CA")
    ca_pem = Path(f"{ca}.pem").read_text()
    with pytest.raises(iot.exceptions.RegistrationCodeValidationException):
        iot.register_ca_certificate(caCertificate=ca_pem, verificationCertificate=pki.leaf(ca, "wrong-code"))
    other = pki.ca("Other CA")
    code = iot.get_registration_code()["registrationCode"]
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_ca_certificate(caCertificate=ca_pem, verificationCertificate=pki.leaf(other, code))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.register_ca_certificate(caCertificate=ca_pem)
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_ca_certificate(caCertificate=pki.leaf(ca, "not-a-ca"), verificationCertificate=pki.leaf(ca, code))
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_ca_certificate(caCertificate="not a certificate", verificationCertificate=pki.leaf(ca, code))
    assert iot.list_ca_certificates()["certificates"] == before
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_ca_certificate(certificateId=cert_id(ca_pem))


def test_register_certificate_signed_by_a_registered_ca(drover, iot, pki):
    ca, registered = register_ca(drover, iot, pki, "Device CA")
    ca_pem = Path(f"{ca}.pem").read_text()
    device = pki.leaf(ca, "device-1")
    out = iot.register_certificate(certificatePem=device, caCertificatePem=ca_pem, setAsActive=True)
    assert out["certificateId"] == cert_id(device)
    d = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert d["status"] == "ACTIVE"
    assert d["caCertificateId"] == registered["certificateId"]
    # Without caCertificatePem the registered CA is found by the issuer.
    second = pki.leaf(ca, "device-2")
    out2 = iot.register_certificate(certificatePem=second, status="INACTIVE")
    d2 = iot.describe_certificate(certificateId=out2["certificateId"])["certificateDescription"]
    assert d2["status"] == "INACTIVE" and d2["caCertificateId"] == registered["certificateId"]
    by_ca = iot.list_certificates_by_ca(caCertificateId=registered["certificateId"])["certificates"]
    assert {c["certificateId"] for c in by_ca} == {out["certificateId"], out2["certificateId"]}
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as ei:
        iot.register_certificate(certificatePem=device, caCertificatePem=ca_pem)
    assert error_code(ei)[0] == 409


def test_register_certificate_from_another_ca_is_refused(drover, iot, pki):
    ca, _ = register_ca(drover, iot, pki, "Real CA")
    stranger = pki.ca("Stranger CA")
    foreign = pki.leaf(stranger, "intruder")
    before = len(all_certificates(iot))
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_certificate(certificatePem=foreign, caCertificatePem=Path(f"{ca}.pem").read_text())
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_certificate(certificatePem=foreign)
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_certificate(certificatePem=foreign, caCertificatePem=Path(f"{stranger}.pem").read_text())
    assert len(all_certificates(iot)) == before
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId=cert_id(foreign))


def test_register_certificate_without_ca(drover, iot, pki):
    stranger = pki.ca("Unregistered CA")
    cert = pki.leaf(stranger, "no-ca-device")
    out = iot.register_certificate_without_ca(certificatePem=cert, status="ACTIVE")
    assert out["certificateId"] == cert_id(cert)
    d = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert d["status"] == "ACTIVE"
    assert d["certificateMode"] == "SNI_ONLY"
    assert "caCertificateId" not in d
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.register_certificate_without_ca(certificatePem=cert)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.register_certificate_without_ca(certificatePem=pki.leaf(stranger, "x"), status="PENDING_TRANSFER")


def test_update_and_delete_ca_certificate(drover, iot, pki):
    _, out = register_ca(drover, iot, pki, "Retired CA")
    cid = out["certificateId"]
    with pytest.raises(iot.exceptions.CertificateStateException) as ei:
        iot.delete_ca_certificate(certificateId=cid)
    assert error_code(ei)[0] == 406
    assert iot.describe_ca_certificate(certificateId=cid)["certificateDescription"]["status"] == "ACTIVE"
    iot.update_ca_certificate(certificateId=cid, newStatus="INACTIVE", newAutoRegistrationStatus="ENABLE",
                              registrationConfig={"templateName": "fleet-template"})
    d = iot.describe_ca_certificate(certificateId=cid)
    assert d["certificateDescription"]["status"] == "INACTIVE"
    assert d["certificateDescription"]["autoRegistrationStatus"] == "ENABLE"
    assert d["certificateDescription"]["customerVersion"] == 2
    assert d["registrationConfig"] == {"templateName": "fleet-template"}
    listed = iot.list_ca_certificates(templateName="fleet-template")["certificates"]
    assert [c["certificateId"] for c in listed] == [cid]
    with pytest.raises(drover.iot_raw.exceptions.InvalidRequestException):
        drover.iot_raw.update_ca_certificate(certificateId=cid, newStatus="REVOKED")
    iot.delete_ca_certificate(certificateId=cid)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_ca_certificate(certificateId=cid)


# --- thing principals -----------------------------------------------------------------------

def test_attach_list_and_detach_thing_principals(drover, iot):
    thing = drover.name("principal-thing")
    iot.create_thing(thingName=thing)
    a = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    b = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_thing_principal(thingName=thing, principal=a)
    iot.attach_thing_principal(thingName=thing, principal=a)  # idempotent
    drover.aws("attach-thing-principal", "--thing-name", thing, "--principal", b)
    assert sorted(iot.list_thing_principals(thingName=thing)["principals"]) == sorted([a, b])
    assert iot.list_principal_things(principal=a)["things"] == [thing]
    v2 = iot.list_thing_principals_v2(thingName=thing)["thingPrincipalObjects"]
    assert {(o["principal"], o["thingPrincipalType"]) for o in v2} == {(a, "NON_EXCLUSIVE_THING"), (b, "NON_EXCLUSIVE_THING")}
    page = iot.list_thing_principals(thingName=thing, maxResults=1)
    assert len(page["principals"]) == 1 and page["nextToken"]
    rest = iot.list_thing_principals(thingName=thing, maxResults=1, nextToken=page["nextToken"])
    assert sorted(page["principals"] + rest["principals"]) == sorted([a, b])

    # A thing with principals cannot be deleted.
    with pytest.raises(iot.exceptions.InvalidRequestException) as ei:
        iot.delete_thing(thingName=thing)
    assert error_code(ei)[0] == 400
    assert iot.describe_thing(thingName=thing)["thingName"] == thing

    iot.detach_thing_principal(thingName=thing, principal=a)
    assert iot.list_thing_principals(thingName=thing)["principals"] == [b]
    assert iot.list_principal_things(principal=a)["things"] == []
    iot.detach_thing_principal(thingName=thing, principal=b)
    iot.delete_thing(thingName=thing)


def test_exclusive_thing_principals(drover, iot):
    t1, t2 = drover.name("excl"), drover.name("excl")
    for t in (t1, t2):
        iot.create_thing(thingName=t)
    arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_thing_principal(thingName=t1, principal=arn, thingPrincipalType="EXCLUSIVE_THING")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_thing_principal(thingName=t2, principal=arn)
    assert iot.list_thing_principals(thingName=t2)["principals"] == []
    objects = iot.list_principal_things_v2(principal=arn)["principalThingObjects"]
    assert objects == [{"thingName": t1, "thingPrincipalType": "EXCLUSIVE_THING"}]
    assert iot.list_thing_principals_v2(thingName=t1, thingPrincipalType="NON_EXCLUSIVE_THING")["thingPrincipalObjects"] == []


def test_thing_principal_refusals(drover, iot):
    thing = drover.name("refusing")
    iot.create_thing(thingName=thing)
    arn = iot.create_keys_and_certificate()["certificateArn"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(thingName=drover.name("ghost"), principal=arn)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(thingName=thing, principal=drover.arn("cert", "ab" * 32))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_thing_principal(thingName=thing, principal="us-east-1:0000-cognito-id")
    assert iot.list_thing_principals(thingName=thing)["principals"] == []
    assert iot.list_principal_things(principal=arn)["things"] == []
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_principals(thingName=drover.name("ghost"))
    drover.aws_error("attach-thing-principal", "--thing-name", drover.name("ghost"), "--principal", arn,
                     code="ResourceNotFoundException")


# --- the README's device walkthrough --------------------------------------------------------

def test_readme_devices_walkthrough_runs_as_printed(tmp_path):
    from drover_proc import DroverProcess
    from test_readme import walkthrough_script

    server = DroverProcess(tmp_path / "drover-data").start()
    try:
        script = walkthrough_script("devices-walkthrough")
        script = script.replace("https://localhost:8443", f"https://localhost:{server.http_port}")
        assert "-p 8883" in script
        script = script.replace("-p 8883", f"-p {server.mqtt_port}")
        env = {k: v for k, v in server.client_env().items() if not k.startswith("AWS_")}
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"walkthrough failed:\n{result.stdout}\n{result.stderr}"
        arn = (tmp_path / "sensor-1.cert-arn").read_text().strip()
        assert re.fullmatch(r"arn:aws:iot:us-east-1:\d{12}:cert/[0-9a-f]{64}", arn)
        assert arn.rsplit("/", 1)[1] == cert_id((tmp_path / "sensor-1.cert.pem").read_text())
        assert "PRIVATE KEY" in (tmp_path / "sensor-1.private.key").read_text()
        assert f'"{arn}"' in result.stdout and '"policyName": "sensor-policy"' in result.stdout
        assert "sensor-1.cert.pem: OK" in result.stdout
        # The MQTT round trip: the device's own message came back through the gateway.
        assert result.stdout.rstrip().endswith("hello from sensor-1"), result.stdout
    finally:
        assert server.stop() == 0
