"""Presigned URLs on the S3 endpoint: boto3's generate_presigned_url and drover's own presigner
(`drover presign`, the code Jobs uses for job-document placeholders), fetched and uploaded
with plain `requests`; expiry, tampering and wrong keys refused with S3's XML errors, and
nothing changed by a refused request."""

import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests


def xml_error(r):
    assert r.headers.get("content-type", "").startswith("application/xml"), r.headers
    root = ET.fromstring(r.content)
    assert root.tag == "Error"
    assert root.findtext("RequestId")
    return root.findtext("Code")


def with_query(url, **changes):
    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query, keep_blank_values=True))
    q.update(changes)
    return urlunsplit(parts._replace(query=urlencode(q)))


# boto3 presigns S3 URLs with SigV2 (AWSAccessKeyId/Expires/Signature) unless configured for
# s3v4; drover accepts both, so every boto3 test runs with each.
@pytest.fixture(scope="module", params=["default", "s3v4"])
def s3(drover, request):
    if request.param == "s3v4":
        return drover.s3_client(signature_version="s3v4")
    return drover.s3_client()


def expires_param(url):
    return "X-Amz-Expires" if "X-Amz-Expires=" in url else "Expires"


@pytest.fixture(scope="module")
def bucket(drover, s3):
    name = drover.name("presigned")
    drover.s3_client().create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="fw/app-2.0.bin", Body=b"A" * 5000)
    return name


def test_boto3_presigned_get_and_put_work_with_requests(drover, s3, bucket):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "fw/app-2.0.bin"}, ExpiresIn=300)
    r = requests.get(url, verify=drover.ca, timeout=10)
    assert r.status_code == 200 and r.content == b"A" * 5000
    # A device resuming an interrupted download.
    r = requests.get(url, headers={"Range": "bytes=4000-"}, verify=drover.ca, timeout=10)
    assert r.status_code == 206 and r.content == b"A" * 1000
    assert r.headers["Content-Range"] == "bytes 4000-4999/5000"
    r = requests.get(url, headers={"Range": "bytes=5000-"}, verify=drover.ca, timeout=10)
    assert r.status_code == 416 and xml_error(r) == "InvalidRange"

    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "configs/dev1.json"},
                                        ExpiresIn=300)
    r = requests.put(put_url, data=b'{"mode":"eco"}', verify=drover.ca, timeout=10)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="configs/dev1.json")["Body"].read() == b'{"mode":"eco"}'


def s3_with_secret(drover, s3, secret):
    v4 = s3.meta.config.signature_version == "s3v4"
    return drover.s3_client(secret_key=secret, **({"signature_version": "s3v4"} if v4 else {}))


def test_expired_tampered_and_wrong_key_urls_are_refused(drover, s3, bucket):
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "fw/app-2.0.bin"},
                                        ExpiresIn=300)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "fw/app-2.0.bin"},
                                        ExpiresIn=300)
    expires = expires_param(get_url)
    later = str(int(dict(parse_qsl(urlsplit(get_url).query))[expires]) + 600)
    refused = {
        "changed expiry": with_query(get_url, **{expires: later}),
        "changed path": get_url.replace("/fw/app-2.0.bin", "/fw/app-3.0.bin"),
        "added parameter": with_query(get_url, **{"response-content-type": "text/html"}),
        "wrong key": s3_with_secret(drover, s3, "y" * 40).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "fw/app-2.0.bin"}, ExpiresIn=300),
    }
    for what, url in refused.items():
        r = requests.get(url, verify=drover.ca, timeout=10)
        assert r.status_code == 403, what
        assert xml_error(r) == "SignatureDoesNotMatch", what

    # A presigned PUT for a GET, a tampered PUT: refused, and the object is unchanged.
    r = requests.put(get_url, data=b"evil", verify=drover.ca, timeout=10)
    assert r.status_code == 403 and xml_error(r) == "SignatureDoesNotMatch"
    r = requests.put(with_query(put_url, **{expires: later}), data=b"evil", verify=drover.ca, timeout=10)
    assert r.status_code == 403 and xml_error(r) == "SignatureDoesNotMatch"
    assert s3.get_object(Bucket=bucket, Key="fw/app-2.0.bin")["Body"].read() == b"A" * 5000

    # Expiry is enforced, and limited to 7 days.
    short = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "fw/app-2.0.bin"},
                                      ExpiresIn=1)
    time.sleep(2.2)
    r = requests.put(short, data=b"late", verify=drover.ca, timeout=10)
    assert r.status_code == 403 and xml_error(r) == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="fw/app-2.0.bin")["Body"].read() == b"A" * 5000
    # SigV4 signs the lifetime itself (X-Amz-Expires), so one second over is exact. A SigV2
    # URL carries only the absolute Expires time, which the server compares with its own
    # clock a moment later: a one-second margin can be used up in transit, so it gets a minute.
    over = 1 if expires == "X-Amz-Expires" else 60
    too_long = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "fw/app-2.0.bin"},
                                         ExpiresIn=7 * 24 * 3600 + over)
    r = requests.get(too_long, verify=drover.ca, timeout=10)
    assert r.status_code in (400, 403)
    xml_error(r)


def test_drover_presigner_urls_work_and_expire(drover, s3, bucket):
    # X-Amz-Date has whole seconds, so a URL lives its lifetime minus up to a second after
    # signing; the one that must work gets a minute, the one that must expire a second.
    out = drover.drover("presign", f"s3://{bucket}/fw/app-2.0.bin", "--expires", "60").stdout.strip()
    assert out.startswith(drover.s3_endpoint + f"/{bucket}/fw/app-2.0.bin?"), out
    r = requests.get(out, verify=drover.ca, timeout=10)
    assert r.status_code == 200 and r.content == b"A" * 5000

    # The AWS URL forms of job documents name the same object.
    url = drover.drover("presign", f"https://s3.us-east-1.amazonaws.com/{bucket}/fw/app-2.0.bin").stdout.strip()
    assert requests.get(url, verify=drover.ca, timeout=10).content == b"A" * 5000

    put = drover.drover("presign", "--method", "put", f"s3://{bucket}/configs/dev2.json", "--expires", "60").stdout.strip()
    r = requests.put(put, data=b"{}", verify=drover.ca, timeout=10)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="configs/dev2.json")["Body"].read() == b"{}"
    # A presigned PUT does not allow a GET.
    assert requests.get(put, verify=drover.ca, timeout=10).status_code == 403

    short = drover.drover("presign", f"s3://{bucket}/fw/app-2.0.bin", "--expires", "1").stdout.strip()
    time.sleep(2.2)
    r = requests.get(short, verify=drover.ca, timeout=10)
    assert r.status_code == 403 and xml_error(r) == "AccessDenied"
    assert requests.get(out, verify=drover.ca, timeout=10).status_code == 200
    drover.drover("presign", f"s3://{bucket}/k", "--expires", "0", expect_rc=1)
