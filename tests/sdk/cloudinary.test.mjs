// The official Cloudinary Node SDK (cloudinary 2.11.0) against `dropkey sandbox`, configured
// the documented way (CLOUDINARY_URL with `upload_prefix`) and talking HTTP as it does by
// default: Node's global agent, which keeps connections alive. Every call here goes over those
// pooled sockets, so a sandbox that drops a keep-alive connection shows up as `write EPIPE` or
// `socket hang up` in the next call.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startSandbox } from "./sandbox.mjs";

/** A 1x1 PNG. */
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
    "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea73581840000000049454e44ae426082",
  "hex",
);

let sb;
let cloudinary;
let dir;
/** Sockets the global agent opened: keep-alive means far fewer than requests. */
let socketsOpened = 0;

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** A PNG of about `size` bytes (a real PNG header, then filler the sandbox does not parse). */
function bigPng(size) {
  return Buffer.concat([PNG, randomBytes(size - PNG.length)]);
}

async function fixture(name, bytes) {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** GET over the same global agent; returns status, headers and body. */
function get(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

/** `upload_stream` of `bytes`, as a promise. */
function uploadStream(bytes, options = {}) {
  return new Promise((resolve, reject) => {
    const stream = cloudinary.uploader.upload_stream(options, (error, result) => (error ? reject(error) : resolve(result)));
    stream.end(bytes);
  });
}

/** `upload_large`, as a promise (v2 calls back once, with the last chunk's answer). */
function uploadLarge(path, options) {
  return new Promise((resolve, reject) => {
    cloudinary.uploader.upload_large(path, options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** The SDK's refusal: it rejects with Cloudinary's `{message, http_code}`, not a socket error. */
async function refused(promise) {
  const error = await promise.then(
    (result) => assert.fail(`expected a refusal, got ${JSON.stringify(result)}`),
    (e) => e,
  );
  assert.equal(typeof error.http_code, "number", `a connection error instead of an answer: ${JSON.stringify(error)} ${error}`);
  return error;
}

before(async () => {
  sb = await startSandbox();
  dir = await mkdtemp(join(tmpdir(), "dropkey-cl-sdk-"));
  const { api_key, cloud_name, api_url } = sb.info.cloudinary;
  // The SDK picks http or https when it is loaded, from `upload_prefix` in CLOUDINARY_URL.
  process.env.CLOUDINARY_URL = `cloudinary://${api_key}:${sb.secret}@${cloud_name}?upload_prefix=${encodeURIComponent(api_url)}`;
  cloudinary = (await import("cloudinary")).v2;
  assert.equal(cloudinary.config().upload_prefix, api_url);
  assert.equal(http.globalAgent.keepAlive, true, "Node's default agent keeps connections alive");
  const createConnection = http.globalAgent.createConnection.bind(http.globalAgent);
  http.globalAgent.createConnection = (...args) => {
    socketsOpened += 1;
    return createConnection(...args);
  };
});

after(async () => {
  await sb?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("upload from a path: stored, served byte-identical, response signature verifies", async () => {
  const path = await fixture("photo.png", PNG);
  const result = await cloudinary.uploader.upload(path, { folder: "sdk/path", tags: ["a", "b"] });
  assert.equal(result.resource_type, "image");
  assert.equal(result.format, "png");
  assert.equal(result.bytes, PNG.length);
  assert.match(result.public_id, /^sdk\/path\/[a-z0-9]{20}$/);
  assert.deepEqual(result.tags, ["a", "b"]);
  assert.ok(cloudinary.utils.verify_api_response_signature(result.public_id, result.version, result.signature));
  assert.ok(!cloudinary.utils.verify_api_response_signature(result.public_id, result.version + 1, result.signature));
  const served = await get(result.secure_url);
  assert.equal(served.status, 200);
  assert.equal(served.headers["content-type"], "image/png");
  assert.deepEqual(served.body, PNG);
  // The Admin API describes it (HTTP Basic with the key and secret).
  const details = await cloudinary.api.resource(result.public_id);
  assert.equal(details.bytes, PNG.length);
  assert.equal(details.format, "png");
});

test("an image from an extension-less path is read by its bytes", async () => {
  const path = await fixture("upload-4f2a9c", PNG);
  const result = await cloudinary.uploader.upload(path);
  assert.equal(result.resource_type, "image");
  assert.equal(result.format, "png");
  const auto = await cloudinary.uploader.upload(path, { resource_type: "auto" });
  assert.equal(auto.resource_type, "image");
  assert.equal(auto.format, "png");
});

test("upload_stream of a buffer (sent as a file named `file`)", async () => {
  const result = await uploadStream(PNG, { public_id: "sdk/stream", use_filename: false });
  assert.equal(result.public_id, "sdk/stream");
  assert.equal(result.resource_type, "image");
  assert.equal(result.format, "png");
  const auto = await uploadStream(PNG, { resource_type: "auto" });
  assert.equal(auto.resource_type, "image");
  const text = await uploadStream(Buffer.from("just text"), { resource_type: "auto" });
  assert.equal(text.resource_type, "raw");
  assert.ok(!text.public_id.includes("."), text.public_id);
  const served = await get(text.secure_url);
  assert.equal(served.body.toString(), "just text");
});

test("upload of a data URI (`file` as text, not signed): stored and served byte-identical", async () => {
  const bytes = bigPng(200_000);
  // Declared as octet-stream: the bytes decide that it is a PNG.
  const uri = `data:application/octet-stream;base64,${bytes.toString("base64")}`;
  const result = await cloudinary.uploader.upload(uri, { folder: "sdk/data-uri" });
  assert.equal(result.resource_type, "image");
  assert.equal(result.format, "png");
  assert.equal(result.bytes, bytes.length);
  assert.match(result.public_id, /^sdk\/data-uri\/[a-z0-9]{20}$/);
  assert.ok(cloudinary.utils.verify_api_response_signature(result.public_id, result.version, result.signature));
  const served = await get(result.secure_url);
  assert.equal(served.status, 200);
  assert.equal(served.headers["content-type"], "image/png");
  assert.equal(sha256(served.body), sha256(bytes));
  // The sandbox's ledger saw the same bytes.
  const line = (await sb.ledger()).find((l) => l.id === result.public_id);
  assert.equal(line?.sha256, sha256(bytes));
});

test("upload of a loopback URL: fetched after the signature checks, stored byte-identical", async () => {
  const bytes = bigPng(300_000);
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits += 1;
    if (req.url !== "/files/holiday.png") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length });
    res.end(bytes);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${server.address().port}/files/holiday.png`;
    const result = await cloudinary.uploader.upload(url, { use_filename: true, unique_filename: false, folder: "sdk/url" });
    assert.equal(hits, 1);
    assert.equal(result.public_id, "sdk/url/holiday");
    assert.equal(result.original_filename, "holiday");
    assert.equal(result.resource_type, "image");
    assert.equal(result.format, "png");
    assert.equal(result.bytes, bytes.length);
    const served = await get(result.secure_url);
    assert.equal(served.status, 200);
    assert.equal(sha256(served.body), sha256(bytes));

    // A forged request makes the sandbox fetch nothing.
    const forged = await refused(cloudinary.uploader.upload(url, { api_secret: "not-the-secret" }));
    assert.equal(forged.http_code, 401);
    assert.equal(hits, 1);

    const missing = await refused(cloudinary.uploader.upload(url.replace("holiday", "nothing")));
    assert.equal(missing.http_code, 400);
    assert.match(missing.message, /HTTP 404/);

    const far = await refused(cloudinary.uploader.upload("https://example.com/sample.png"));
    assert.equal(far.http_code, 400);
    assert.match(far.message, /loopback only/);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("context values come back as the SDK was given them (its escapes undone)", async () => {
  const context = { alt: "plain", caption: "a=b", note: "x|y" };
  const result = await uploadStream(PNG, { context });
  assert.deepEqual(result.context, { custom: context });
});

test("upload_large: a 12 MiB file in 5 MiB chunks", async () => {
  const bytes = bigPng(12 * 1024 * 1024);
  const path = await fixture("large.png", bytes);
  const image = await uploadLarge(path, { resource_type: "image", chunk_size: 5 * 1024 * 1024 });
  assert.equal(image.resource_type, "image");
  assert.equal(image.format, "png");
  assert.equal(image.bytes, bytes.length);
  assert.ok(cloudinary.utils.verify_api_response_signature(image.public_id, image.version, image.signature));
  const served = await get(image.secure_url);
  assert.equal(sha256(served.body), sha256(bytes));
  const ledger = (await sb.ledger()).filter((e) => e.id === image.public_id);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].sha256, sha256(bytes));
  assert.ok(ledger[0].upload_id);

  // Raw (upload_large's default) and no extension in the name: none in the public id.
  const raw = randomBytes(6 * 1024 * 1024);
  const rawPath = await fixture("blob-without-extension", raw);
  const stored = await uploadLarge(rawPath, { chunk_size: 5 * 1024 * 1024 });
  assert.equal(stored.resource_type, "raw");
  assert.equal(stored.bytes, raw.length);
  assert.ok(!stored.public_id.includes("."), stored.public_id);
  assert.equal(sha256((await get(stored.secure_url)).body), sha256(raw));
});

test("private assets: refused publicly, fetched through private_download_url", async () => {
  const path = await fixture("passport.png", PNG);
  const result = await cloudinary.uploader.upload(path, { type: "private", folder: "kyc" });
  assert.equal(result.type, "private");
  const publicly = await get(result.secure_url);
  assert.equal(publicly.status, 403);
  const url = cloudinary.utils.private_download_url(result.public_id, "png", { type: "private" });
  assert.ok(url.startsWith(sb.info.cloudinary.api_url), url);
  const fetched = await get(url);
  assert.equal(fetched.status, 200);
  assert.deepEqual(fetched.body, PNG);
  const attachment = await get(
    cloudinary.utils.private_download_url(result.public_id, "png", { type: "private", attachment: true }),
  );
  assert.match(attachment.headers["content-disposition"], /^attachment/);
  const tampered = await get(url.replace(/signature=[0-9a-f]+/, `signature=${"0".repeat(40)}`));
  assert.equal(tampered.status, 401);
  const expired = await get(
    cloudinary.utils.private_download_url(result.public_id, "png", {
      type: "private",
      expires_at: Math.floor(Date.now() / 1000) - 60,
    }),
  );
  assert.equal(expired.status, 403);
});

test("destroy removes an asset once", async () => {
  const result = await uploadStream(PNG);
  assert.deepEqual(await cloudinary.uploader.destroy(result.public_id), { result: "ok" });
  assert.deepEqual(await cloudinary.uploader.destroy(result.public_id), { result: "not found" });
  assert.equal((await get(result.secure_url)).status, 404);
});

test("refusals are answered with Cloudinary's status and message, and the connection lives on", async () => {
  // A body bigger than the socket buffers, so an unread body would break the connection.
  const path = await fixture("refused.bin", randomBytes(1024 * 1024));
  const wrongSecret = await refused(cloudinary.uploader.upload(path, { api_secret: "not-the-secret" }));
  assert.equal(wrongSecret.http_code, 401);
  assert.match(wrongSecret.message, /^Invalid Signature [0-9a-f]{40}\. String to sign - 'timestamp=\d+'\.$/);

  const wrongKey = await refused(cloudinary.uploader.upload(path, { api_key: "not-the-key" }));
  assert.equal(wrongKey.http_code, 401);
  assert.match(wrongKey.message, /Unknown API key/);

  // A signature made by hand: `signature` in the options makes the SDK send them as they are.
  const stale = Math.floor(Date.now() / 1000) - 2 * 3600;
  const staleSignature = cloudinary.utils.api_sign_request({ timestamp: stale }, sb.secret);
  const staleError = await refused(
    cloudinary.uploader.upload(path, { timestamp: stale, signature: staleSignature, api_key: sb.info.cloudinary.api_key }),
  );
  assert.equal(staleError.http_code, 400);
  assert.match(staleError.message, /^Stale request - reported time is .* which is out of range/);

  const now = Math.floor(Date.now() / 1000);
  const good = cloudinary.utils.api_sign_request({ timestamp: now }, sb.secret);
  const tampered = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
  const tamperedError = await refused(
    cloudinary.uploader.upload(path, { timestamp: now, signature: tampered, api_key: sb.info.cloudinary.api_key }),
  );
  assert.equal(tamperedError.http_code, 401);
  assert.match(tamperedError.message, /^Invalid Signature /);

  const bad = await refused(cloudinary.uploader.upload(path, { resource_type: "image" }));
  assert.equal(bad.http_code, 400);
  assert.match(bad.message, /^Invalid image file/);

  // The same pool carries on.
  const fine = await cloudinary.uploader.upload(path, { resource_type: "raw" });
  assert.equal(fine.bytes, 1024 * 1024);
});

test("forged and stale uploads are judged before the file: 401/400, not 413, and nothing written", async () => {
  // A sandbox that takes files of at most 64 KiB: had it streamed these 1 MiB files before
  // judging the signature it would answer 413. The SDK sends every field before the file.
  const small = await startSandbox(["--max-file-size", "65536"]);
  // Pointed at this sandbox for the test: with `signature` given, the SDK sends every option
  // as a parameter, so the account cannot travel in the options.
  const saved = { ...cloudinary.config() };
  try {
    const { api_key, cloud_name } = small.info.cloudinary;
    cloudinary.config({ api_key, api_secret: small.secret, cloud_name, upload_prefix: small.info.cloudinary.api_url });
    const path = await fixture("judged-first.bin", randomBytes(1024 * 1024));
    const wrongSecret = await refused(cloudinary.uploader.upload(path, { api_secret: "not-the-secret" }));
    assert.equal(wrongSecret.http_code, 401, wrongSecret.message);
    assert.match(wrongSecret.message, /^Invalid Signature /);
    const wrongKey = await refused(cloudinary.uploader.upload(path, { api_key: "not-the-key" }));
    assert.equal(wrongKey.http_code, 401, wrongKey.message);
    assert.match(wrongKey.message, /Unknown API key/);
    const stale = Math.floor(Date.now() / 1000) - 2 * 3600;
    const staleSignature = cloudinary.utils.api_sign_request({ timestamp: stale }, small.secret);
    const staleError = await refused(
      cloudinary.uploader.upload(path, { timestamp: stale, signature: staleSignature, api_key }),
    );
    assert.equal(staleError.http_code, 400, staleError.message);
    assert.match(staleError.message, /^Stale request/);
    // upload_large: the first (here the only) chunk, X-Unique-Upload-Id and Content-Range.
    const chunk = await refused(
      uploadLarge(path, { api_secret: "not-the-secret", chunk_size: 5 * 1024 * 1024 }),
    );
    assert.equal(chunk.http_code, 401, chunk.message);
    const root = dirname(small.info.ledger);
    assert.deepEqual(await readdir(join(root, "tmp")), []);
    assert.deepEqual(await readdir(join(root, "chunks")), []);
    // A valid upload still goes through.
    const ok = await cloudinary.uploader.upload(await fixture("judged-ok.png", PNG));
    assert.equal(ok.bytes, PNG.length);
    assert.equal((await small.ledger()).length, 1);
  } finally {
    cloudinary.config(saved);
    await small.stop();
  }
});

test("soak: 500 SDK uploads over keep-alive connections, no connection errors", async () => {
  const total = 500;
  const workers = 8;
  const before = socketsOpened;
  const started = performance.now();
  const failures = [];
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < total) {
        const i = next++;
        const bytes = Buffer.concat([PNG, Buffer.from(`soak ${i}`)]);
        try {
          const result =
            i % 2 === 0
              ? await uploadStream(bytes, { folder: "soak", tags: ["soak"] })
              : await cloudinary.uploader.upload(await fixture(`soak-${i}.png`, bytes), { folder: "soak" });
          assert.equal(result.bytes, bytes.length);
          done += 1;
        } catch (error) {
          failures.push(`${i}: ${error?.message ?? error} ${JSON.stringify(error)}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const opened = socketsOpened - before;
  console.log(`soak: ${done} uploads in ${seconds.toFixed(1)} s (${(done / seconds).toFixed(0)}/s), ${opened} sockets opened`);
  assert.deepEqual(failures, []);
  assert.equal(done, total);
  // Keep-alive held: a handful of sockets served all of them.
  assert.ok(opened <= 2 * workers, `${opened} sockets for ${total} uploads`);
  const soaked = (await sb.ledger()).filter((e) => e.folder === "soak");
  assert.equal(soaked.length, total);
});
