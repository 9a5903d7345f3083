"""Job documents with presigned-URL placeholders, end to end: an artifact uploaded to drover's
S3 endpoint with boto3, a job whose document names it with `${aws:iot:s3-presigned-url:...}`
(and drover's `${drover:s3-presigned-put-url:...}` for an upload), delivered to a paho device
over the jobs MQTT API; the device then downloads (and uploads) with a plain HTTP client."""

import hashlib
import urllib.parse

import pytest
import requests

from jobs_helpers import JobsMqtt, create_job, provision_jobs_device

FIRMWARE = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture()
def firmware_bucket(drover):
    s3 = drover.s3_client()
    bucket = drover.name("fw").lower()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app/app-2.0.bin", Body=FIRMWARE)
    return s3, bucket


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def with_query(url, **changes):
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(changes)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def test_a_placeholder_becomes_a_working_expiring_url_at_delivery(drover, tmp_path, firmware_bucket):
    s3, bucket = firmware_bucket
    device = provision_jobs_device(drover, tmp_path)
    document = {
        "operation": "install",
        "firmware": f"${{aws:iot:s3-presigned-url:https://s3.{drover.region}.amazonaws.com/{bucket}/app/app-2.0.bin}}",
        "sha256": hashlib.sha256(FIRMWARE).hexdigest(),
        "report": f"${{drover:s3-presigned-put-url:s3://{bucket}/reports/${{iot:ThingName}}.json}}",
    }
    job_id = create_job(drover.iot, [drover.arn("thing", device.thing)], document, wait_for=1,
                        presignedUrlConfig={"expiresInSec": 60})
    # The stored document keeps the placeholders; only deliveries carry URLs.
    stored = drover.iot.get_job_document(jobId=job_id)["document"]
    assert "${aws:iot:s3-presigned-url:" in stored

    dev = JobsMqtt(device)
    dev.connect()
    try:
        reply = dev.accepted("start-next", {})
    finally:
        dev.close()
    delivered = reply["execution"]["jobDocument"]
    assert delivered["operation"] == "install"
    get_url, put_url = delivered["firmware"], delivered["report"]
    assert get_url.startswith(drover.s3_endpoint + "/"), get_url
    # The URL lives presignedUrlConfig.expiresInSec.
    assert query_of(get_url)["X-Amz-Expires"] == "60"
    assert query_of(put_url)["X-Amz-Expires"] == "60"

    # A device downloads with nothing but the URL, resumes with Range, and verifies.
    r = requests.get(get_url, verify=drover.ca, timeout=10)
    assert r.status_code == 200, r.text
    assert r.content == FIRMWARE
    assert hashlib.sha256(r.content).hexdigest() == delivered["sha256"]
    r = requests.get(get_url, headers={"Range": "bytes=1000-"}, verify=drover.ca, timeout=10)
    assert r.status_code == 206 and r.content == FIRMWARE[1000:]

    # A changed expiry is a tampered URL: S3's XML error, nothing served.
    r = requests.get(with_query(get_url, **{"X-Amz-Expires": "3600"}), verify=drover.ca, timeout=10)
    assert r.status_code == 403 and "<Code>" in r.text

    # The upload URL is for this thing's key only, and for PUT only.
    r = requests.put(put_url, data=b'{"installed":"2.0"}', verify=drover.ca, timeout=10)
    assert r.status_code == 200, r.text
    body = s3.get_object(Bucket=bucket, Key=f"reports/{device.thing}.json")["Body"].read()
    assert body == b'{"installed":"2.0"}'
    r = requests.get(put_url, verify=drover.ca, timeout=10)
    assert r.status_code == 403


def test_presigned_url_config_out_of_range_is_refused(drover, tmp_path, firmware_bucket):
    _, bucket = firmware_bucket
    thing = drover.name("jdev")
    drover.iot.create_thing(thingName=thing)
    document = {"firmware": f"${{aws:iot:s3-presigned-url:s3://{bucket}/app/app-2.0.bin}}"}
    # boto3 checks the range itself; the unvalidated client shows the server refuses too.
    for seconds in (59, 3601):
        with pytest.raises(drover.iot_raw.exceptions.InvalidRequestException):
            create_job(drover.iot_raw, [drover.arn("thing", thing)], document, job_id=f"bad-{seconds}",
                       presignedUrlConfig={"expiresInSec": seconds})
    assert not [j for j in drover.iot.list_jobs()["jobs"] if j["jobId"].startswith("bad-")]
