"""The S3 artifact store with the real awscli and boto3: buckets, objects, Range, listings,
multipart uploads, checksums and S3's XML errors, on drover's --s3-addr endpoint."""

import base64
import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import botocore.exceptions
import pytest
import requests

from conftest import AWSCLI_SERVICE_ERROR_RC


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def s3_error(exc_info):
    err = exc_info.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]


@pytest.fixture(scope="module")
def s3(drover):
    return drover.s3_client()


@pytest.fixture
def bucket(drover, s3):
    name = drover.name("bkt")
    s3.create_bucket(Bucket=name)
    return name


# ---- awscli -------------------------------------------------------------------------------------


def test_awscli_mb_cp_ls_rm_rb_and_a_100mb_multipart_round_trip(drover, tmp_path):
    name = drover.name("cli")
    drover.awscli("s3", "mb", f"s3://{name}")
    big = tmp_path / "app-2.0.bin"
    with open(big, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    small = tmp_path / "notes.txt"
    small.write_text("release notes\n")
    drover.awscli("s3", "cp", "--only-show-errors", str(big), f"s3://{name}/")
    drover.awscli("s3", "cp", "--only-show-errors", str(small), f"s3://{name}/docs/notes.txt")

    listing = drover.awscli("s3", "ls", f"s3://{name}/").stdout
    assert re.search(r"104857600 app-2\.0\.bin", listing), listing
    assert "PRE docs/" in listing
    recursive = drover.awscli("s3", "ls", "--recursive", f"s3://{name}/").stdout
    assert "docs/notes.txt" in recursive

    back = tmp_path / "back.bin"
    drover.awscli("s3", "cp", "--only-show-errors", f"s3://{name}/app-2.0.bin", str(back))
    assert sha256_file(back) == sha256_file(big)
    # One whole-object GET of the 100 MB object through a presigned URL, as a device would.
    url = drover.s3_client().generate_presigned_url("get_object", Params={"Bucket": name, "Key": "app-2.0.bin"})
    with requests.get(url, verify=drover.ca, stream=True, timeout=60) as r:
        h = hashlib.sha256()
        for block in r.iter_content(1 << 20):
            h.update(block)
    assert h.hexdigest() == sha256_file(big)
    # Bodies stream through the server in bounded buffers: its peak memory stays well below
    # the size of the object it received and sent.
    peak_kib = int(re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{drover.server.pid}/status").read_text()).group(1))
    print(f"drover peak RSS after 100 MB up and down: {peak_kib} KiB")
    assert peak_kib < 80 * 1024, peak_kib

    head = json.loads(drover.awscli("s3api", "head-object", "--bucket", name, "--key", "app-2.0.bin").stdout)
    assert head["ContentLength"] == 100 << 20
    # awscli uploads 8 MiB parts: the ETag is S3's md5-of-md5s with the part count.
    assert re.fullmatch(r'"[0-9a-f]{32}-13"', head["ETag"]), head["ETag"]

    # rb refuses a bucket with objects; rm then rb empties and removes it.
    res = drover.awscli("s3", "rb", f"s3://{name}", expect_rc=None)
    assert res.rc != 0 and "BucketNotEmpty" in res.stderr, repr(res)
    drover.awscli("s3", "rm", "--only-show-errors", f"s3://{name}/docs/notes.txt")
    drover.awscli("s3", "rm", "--only-show-errors", "--recursive", f"s3://{name}/")
    drover.awscli("s3", "rb", f"s3://{name}")
    assert name not in drover.awscli("s3", "ls").stdout


def test_awscli_get_object_range_and_list_objects_v2(drover, s3, bucket, tmp_path):
    body = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="fw/app.bin", Body=body)
    out = tmp_path / "part.bin"
    res = drover.awscli("s3api", "get-object", "--bucket", bucket, "--key", "fw/app.bin",
                        "--range", "bytes=100-199", str(out))
    meta = json.loads(res.stdout)
    assert meta["ContentRange"] == f"bytes 100-199/{len(body)}"
    assert out.read_bytes() == body[100:200]

    for key in ["a.txt", "b/1", "b/2", "c/1", "c/2/x", "d.txt", "e.txt"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    res = json.loads(drover.awscli("s3api", "list-objects-v2", "--bucket", bucket, "--delimiter", "/").stdout)
    assert [c["Key"] for c in res["Contents"]] == ["a.txt", "d.txt", "e.txt"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["b/", "c/", "fw/"]

    # Pagination by hand: two keys per page, following NextContinuationToken.
    keys, token, pages = [], None, 0
    while True:
        args = ["s3api", "list-objects-v2", "--bucket", bucket, "--max-keys", "2", "--no-paginate"]
        if token:
            args += ["--continuation-token", token]
        page = json.loads(drover.awscli(*args).stdout)
        pages += 1
        keys += [c["Key"] for c in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert pages == 4
    assert keys == ["a.txt", "b/1", "b/2", "c/1", "c/2/x", "d.txt", "e.txt", "fw/app.bin"]

    # awscli's own paginator over the same listing, with a prefix.
    res = json.loads(drover.awscli("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "c/",
                                   "--page-size", "1").stdout)
    assert [c["Key"] for c in res["Contents"]] == ["c/1", "c/2/x"]


def test_awscli_errors(drover):
    res = drover.awscli("s3", "ls", "s3://no-such-bucket-here", expect_rc=AWSCLI_SERVICE_ERROR_RC)
    assert "NoSuchBucket" in res.stderr
    res = drover.awscli("s3api", "create-bucket", "--bucket", "Bad_Name", expect_rc=None)
    assert res.rc != 0


# ---- boto3 --------------------------------------------------------------------------------------


def test_boto3_put_get_head_copy_delete(s3, bucket):
    body = b"firmware image " * 1000
    put = s3.put_object(Bucket=bucket, Key="fw/app 1.0+rc.bin", Body=body, ContentType="application/x-firmware",
                        Metadata={"version": "1.0"}, CacheControl="no-cache")
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()

    got = s3.get_object(Bucket=bucket, Key="fw/app 1.0+rc.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-firmware"
    assert got["Metadata"] == {"version": "1.0"}
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLength"] == len(body)
    assert got["ETag"] == put["ETag"]
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-sha256"] == base64.b64encode(
        hashlib.sha256(body).digest()).decode()
    assert "last-modified" in got["ResponseMetadata"]["HTTPHeaders"]

    head = s3.head_object(Bucket=bucket, Key="fw/app 1.0+rc.bin")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]

    # Conditional GETs: a device re-checking an artifact it already has.
    for cond in ({"IfNoneMatch": put["ETag"]}, {"IfModifiedSince": head["LastModified"]}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_object(Bucket=bucket, Key="fw/app 1.0+rc.bin", **cond)
        assert s3_error(e)[0] == 304, cond
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="fw/app 1.0+rc.bin", IfMatch='"0000"')
    assert s3_error(e) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="fw/app 1.0+rc.bin", IfMatch=put["ETag"])["ContentLength"] == len(body)

    copy = s3.copy_object(Bucket=bucket, Key="fw/copy.bin", CopySource={"Bucket": bucket, "Key": "fw/app 1.0+rc.bin"})
    assert copy["CopyObjectResult"]["ETag"] == put["ETag"]
    copied = s3.get_object(Bucket=bucket, Key="fw/copy.bin")
    assert copied["Body"].read() == body and copied["Metadata"] == {"version": "1.0"}
    replaced = s3.copy_object(Bucket=bucket, Key="fw/copy2.bin", MetadataDirective="REPLACE",
                              Metadata={"version": "2.0"}, ContentType="text/plain",
                              CopySource=f"{bucket}/fw/copy.bin")
    assert replaced["CopyObjectResult"]["ETag"] == put["ETag"]
    assert s3.head_object(Bucket=bucket, Key="fw/copy2.bin")["Metadata"] == {"version": "2.0"}

    s3.delete_object(Bucket=bucket, Key="fw/copy.bin")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="fw/copy.bin")
    assert s3_error(e) == (404, "NoSuchKey")
    s3.delete_object(Bucket=bucket, Key="fw/copy.bin")  # deleting an absent key succeeds

    # Ranges: a-b, a-, -n, and unsatisfiable.
    assert s3.get_object(Bucket=bucket, Key="fw/app 1.0+rc.bin", Range="bytes=0-9")["Body"].read() == body[:10]
    r = s3.get_object(Bucket=bucket, Key="fw/app 1.0+rc.bin", Range="bytes=14990-")
    assert r["Body"].read() == body[14990:] and r["ContentRange"] == f"bytes 14990-14999/{len(body)}"
    assert s3.get_object(Bucket=bucket, Key="fw/app 1.0+rc.bin", Range="bytes=-5")["Body"].read() == body[-5:]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="fw/app 1.0+rc.bin", Range=f"bytes={len(body)}-")
    assert s3_error(e) == (416, "InvalidRange")

    listed = s3.list_objects(Bucket=bucket)  # ListObjects v1
    assert sorted(o["Key"] for o in listed["Contents"]) == ["fw/app 1.0+rc.bin", "fw/copy2.bin"]
    assert s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "fw/copy2.bin"}]})["Deleted"] == [
        {"Key": "fw/copy2.bin"}]


def test_boto3_multipart_upload(s3, bucket):
    key = "fw/big.bin"
    parts = [os.urandom(5 << 20), os.urandom(5 << 20), os.urandom(1234)]
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/octet-stream",
                                    Metadata={"build": "42"})
    etags = []
    for n, data in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=data)
        assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        etags.append(r["ETag"])
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=up["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    # Nothing is visible before completion.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert s3_error(e)[0] == 404
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": etags[1]}]})
    assert s3_error(e) == (400, "InvalidPart")
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]})
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert done["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest()
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"".join(parts)
    assert got["Metadata"] == {"build": "42"}
    assert got["ETag"] == done["ETag"]

    # Abort: the upload and its parts are gone.
    up = s3.create_multipart_upload(Bucket=bucket, Key="fw/aborted.bin")
    s3.upload_part(Bucket=bucket, Key="fw/aborted.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="fw/aborted.bin", UploadId=up["UploadId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="fw/aborted.bin", UploadId=up["UploadId"], PartNumber=2, Body=b"x")
    assert s3_error(e) == (404, "NoSuchUpload")


def test_content_md5_and_checksum_mismatches_store_nothing(s3, bucket):
    body = b"the real bytes"
    wrong_md5 = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad-md5", Body=body, ContentMD5=wrong_md5)
    assert s3_error(e) == (400, "BadDigest")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key="bad-md5")
    assert s3_error(e)[0] == 404

    right_md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="good-md5", Body=body, ContentMD5=right_md5)
    assert s3.get_object(Bucket=bucket, Key="good-md5")["Body"].read() == body

    wrong_sha = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="good-md5", Body=b"replacement", ChecksumSHA256=wrong_sha)
    assert s3_error(e) == (400, "BadDigest")
    # The earlier version is intact.
    assert s3.get_object(Bucket=bucket, Key="good-md5")["Body"].read() == body
    right_sha = base64.b64encode(hashlib.sha256(b"replacement").digest()).decode()
    r = s3.put_object(Bucket=bucket, Key="good-md5", Body=b"replacement", ChecksumSHA256=right_sha)
    assert r["ChecksumSHA256"] == right_sha
    got = s3.get_object(Bucket=bucket, Key="good-md5", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"replacement" and got["ChecksumSHA256"] == right_sha


def test_bucket_errors(drover, s3):
    name = drover.name("errs")
    s3.create_bucket(Bucket=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert s3_error(e) == (409, "BucketAlreadyOwnedByYou")
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert s3_error(e) == (409, "BucketNotEmpty")
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert s3_error(e)[0] == 404
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert s3_error(e) == (404, "NoSuchBucket")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=name, Key="k", Body=b"1")
    assert s3_error(e) == (404, "NoSuchBucket")
    bad = drover.s3_client()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.create_bucket(Bucket="Bad..Name")
    assert s3_error(e) == (400, "InvalidBucketName")


def test_signature_errors_are_s3_xml(drover, bucket):
    wrong_secret = drover.s3_client(secret_key="x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong_secret.put_object(Bucket=bucket, Key="k", Body=b"1")
    assert s3_error(e) == (403, "SignatureDoesNotMatch")
    unknown = drover.s3_client(access_key="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unknown.list_objects_v2(Bucket=bucket)
    assert s3_error(e) == (403, "InvalidAccessKeyId")
    # Anonymous requests are refused with S3's XML error document.
    r = requests.get(f"{drover.s3_endpoint}/{bucket}/k", verify=drover.ca, timeout=10)
    assert r.status_code == 403
    root = ET.fromstring(r.content)
    assert root.tag == "Error"
    assert root.findtext("Code") == "AccessDenied"
    assert root.findtext("Resource") == f"/{bucket}/k"
    assert root.findtext("RequestId") == r.headers["x-amz-request-id"]
    assert root.find("Message") is not None
