"""The artifact store's safety properties: hostile keys never reach outside the data directory,
and a server killed with SIGKILL in the middle of an upload never shows a partial object (the
old version stays intact; leftovers are cleaned at the next start)."""

import hashlib
import http.client
import os
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def raw_request(drover, method, raw_path, body=b""):
    """Sends `raw_path` exactly as given (no client-side dot-segment normalization), signed
    with SigV4 for s3 over that same path."""
    url = drover.s3_endpoint + raw_path
    req = AWSRequest(method=method, url=url, data=body,
                     headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    S3SigV4Auth(Credentials(drover.access_key, drover.secret_key), "s3", drover.region).add_auth(req)
    ctx = ssl.create_default_context(cafile=drover.ca)
    parts = urlsplit(drover.s3_endpoint)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=30)
    try:
        conn.request(method, raw_path, body=body, headers=dict(req.headers))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


HOSTILE_KEYS = ["../x", "a/../../x", "../../../../../../tmp/drover-escape", "/abs/escape", "..", "a/./b",
                "..%2F..%2Fencoded-escape", "back\\..\\..\\slash"]


def test_hostile_keys_stay_inside_the_bucket(drover):
    s3 = drover.s3_client()
    bucket = drover.name("hostile")
    s3.create_bucket(Bucket=bucket)
    for i, key in enumerate(HOSTILE_KEYS):
        quoted = "".join(c if c.isalnum() or c in "/._-~" else "%%%02X" % ord(c) for c in key)
        body = f"payload {i}".encode()
        status, text = raw_request(drover, "PUT", f"/{bucket}/{quoted}", body)
        assert status == 200, (key, status, text)
        status, got = raw_request(drover, "GET", f"/{bucket}/{quoted}")
        assert (status, got) == (200, body), key
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == set(HOSTILE_KEYS)

    # A NUL byte in a key is refused.
    status, text = raw_request(drover, "PUT", f"/{bucket}/nul%00byte", b"x")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in text

    # Nothing was created outside the bucket's object directory: every file drover keeps
    # under artifacts/ is either bucket.json or an object named by a hash.
    root = Path(drover.data_dir)
    for escaped in ["x", "escape", "drover-escape", "encoded-escape", "slash"]:
        assert not list(root.parent.rglob(escaped)), escaped
    assert not Path("/tmp/drover-escape").exists()
    objects = root / "artifacts" / "buckets" / bucket / "objects"
    files = [p for p in objects.rglob("*") if p.is_file()]
    assert len(files) == len(HOSTILE_KEYS)
    for f in files:
        rel = f.relative_to(objects).parts
        assert len(rel) == 2 and len(rel[1]) == 64 and all(c in "0123456789abcdef" for c in rel[1]), f


def test_kill_9_mid_upload_leaves_no_partial_object(fresh_drover):
    d = fresh_drover
    s3 = d.s3_client(signature_version="s3v4")
    s3.create_bucket(Bucket="fw")
    old = os.urandom(1 << 20)
    s3.put_object(Bucket="fw", Key="app.bin", Body=old)

    def start_partial_upload(key, total=64 << 20, sent=16 << 20):
        url = s3.generate_presigned_url("put_object", Params={"Bucket": "fw", "Key": key}, ExpiresIn=600)
        parts = urlsplit(url)
        ctx = ssl.create_default_context(cafile=d.ca)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=30)
        conn.putrequest("PUT", f"{parts.path}?{parts.query}")
        conn.putheader("Content-Length", str(total))
        conn.endheaders()
        chunk = b"N" * (1 << 20)
        for _ in range(sent >> 20):
            conn.send(chunk)
        return conn

    replacing = start_partial_upload("app.bin")
    creating = start_partial_upload("new.bin")
    up = s3.create_multipart_upload(Bucket="fw", Key="multi.bin")
    s3.upload_part(Bucket="fw", Key="multi.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * (5 << 20))

    # Wait until the server has written part of both bodies to disk, then SIGKILL it.
    tmp = Path(d.data_dir) / "artifacts" / "tmp"
    deadline = time.time() + 20
    while time.time() < deadline:
        sizes = [p.stat().st_size for p in tmp.iterdir()] if tmp.exists() else []
        if len([s for s in sizes if s > 4 << 20]) >= 2:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"uploads never reached the disk: {sizes}")
    d.server.proc.kill()
    d.server.proc.wait()
    for conn in (replacing, creating):
        conn.close()

    d.server.start()
    s3 = d.s3_client()
    assert s3.get_object(Bucket="fw", Key="app.bin")["Body"].read() == old
    with pytest.raises(Exception) as e:
        s3.head_object(Bucket="fw", Key="new.bin")
    assert "404" in str(e.value)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="fw")["Contents"]] == ["app.bin"]
    assert list(tmp.iterdir()) == []
    # A multipart upload acknowledged before the kill survives it and can be completed.
    etag = s3.upload_part(Bucket="fw", Key="multi.bin", UploadId=up["UploadId"], PartNumber=2, Body=b"q")["ETag"]
    parts = s3.list_parts(Bucket="fw", Key="multi.bin", UploadId=up["UploadId"])["Parts"]
    s3.complete_multipart_upload(Bucket="fw", Key="multi.bin", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]})
    assert parts[1]["ETag"] == etag
    assert s3.head_object(Bucket="fw", Key="multi.bin")["ContentLength"] == (5 << 20) + 1
