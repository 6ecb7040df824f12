// The official ImageKit Node SDK (@imagekit/nodejs, pinned in package.json) against a real
// `dropkey sandbox`, configured through its documented `baseURL` option and using its default
// fetch (keep-alive connections). Retries are off (`maxRetries: 0`) so that a broken
// connection surfaces as an error instead of being retried away.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import ImageKit, { APIConnectionError, APIError, toFile } from "@imagekit/nodejs";

import { startSandbox } from "./sandbox.mjs";

let sb;
let client;
let dir;

before(async () => {
  sb = await startSandbox();
  client = sdk(sb.secret);
  dir = await mkdtemp(join(tmpdir(), "dropkey-sdk-ik-"));
});

after(async () => {
  await sb?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A client with `privateKey`, talking to the sandbox. */
function sdk(privateKey) {
  return new ImageKit({ privateKey, baseURL: sb.base, maxRetries: 0, timeout: 30_000 });
}

/** A client that sends no Authorization header: client-side uploads carry a token instead. */
function tokenClient() {
  return new ImageKit({
    privateKey: "unused",
    password: null,
    baseURL: sb.base,
    maxRetries: 0,
    defaultHeaders: { Authorization: null },
  });
}

/** The bytes a URL serves. */
async function download(url) {
  const response = await fetch(url);
  assert.equal(response.status, 200, `${url}: ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

/** The API error a call ends with; fails on success and on a connection error. */
async function refusal(promise) {
  try {
    const value = await promise;
    assert.fail(`expected a refusal, got ${JSON.stringify(value)}`);
  } catch (err) {
    assert.ok(!(err instanceof APIConnectionError), `a broken connection instead of an answer: ${err}`);
    assert.ok(err instanceof APIError, `not an API error: ${err}`);
    return err;
  }
}

function base64url(value) {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}

/** An Upload API V2 token (ImageKit's Upload API V2 guide): HS256, kid = public key, upload parameters as strings. */
function jwt(params, { iat = Math.floor(Date.now() / 1000), exp = iat + 600, key = sb.secret } = {}) {
  const header = base64url({ alg: "HS256", typ: "JWT", kid: sb.info.imagekit.publicKey });
  const payload = base64url({ ...params, iat, exp });
  const signature = createHmac("sha256", key).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

describe("uploads", () => {
  const bytes = randomBytes(200_000);
  let first;

  test("from a path (a read stream)", async () => {
    const path = join(dir, "from-path.bin");
    await writeFile(path, bytes);
    first = await client.files.upload({
      file: createReadStream(path),
      fileName: "from-path.bin",
      folder: "/sdk",
      tags: ["a", "b"],
    });
    assert.match(first.filePath, /^\/sdk\/from-path_[A-Za-z0-9]+\.bin$/);
    assert.deepEqual(first.tags, ["a", "b"]);
    assert.equal(first.size, bytes.length);
    assert.deepEqual(await download(first.url), bytes);
  });

  test("from a buffer", async () => {
    const file = await client.files.upload({
      file: await toFile(bytes, "buffer.bin"),
      fileName: "buffer.bin",
      useUniqueFileName: false,
    });
    assert.equal(file.filePath, "/buffer.bin");
    assert.deepEqual(await download(file.url), bytes);
  });

  test("from base64, plain and as a data URI", async () => {
    for (const [name, file] of [
      ["plain.bin", bytes.toString("base64")],
      ["uri.png", `data:image/png;base64,${bytes.toString("base64")}`],
    ]) {
      const uploaded = await client.files.upload({ file, fileName: name });
      assert.equal(uploaded.size, bytes.length, name);
      assert.deepEqual(await download(uploaded.url), bytes, name);
    }
  });

  test("from a loopback URL, and a clear refusal for any other", async () => {
    const fetched = await client.files.upload({ file: first.url, fileName: "fetched.bin" });
    assert.deepEqual(await download(fetched.url), bytes);
    const err = await refusal(client.files.upload({ file: "https://example.com/a.png", fileName: "far.png" }));
    assert.equal(err.status, 400);
    assert.match(err.error.message, /loopback only/);
  });

  test("file details, then delete", async () => {
    const uploaded = await client.files.upload({ file: await toFile(bytes, "d.bin"), fileName: "details.bin" });
    const details = await client.files.get(uploaded.fileId);
    assert.equal(details.fileId, uploaded.fileId);
    assert.equal(details.filePath, uploaded.filePath);
    assert.equal(details.size, bytes.length);
    await client.files.delete(uploaded.fileId);
    const err = await refusal(client.files.get(uploaded.fileId));
    assert.equal(err.status, 404);
    const response = await fetch(uploaded.url);
    assert.equal(response.status, 404);
    await response.arrayBuffer();
  });

  test("signed URLs from the SDK's helper open private files", async () => {
    const secret = randomBytes(5000);
    const uploaded = await client.files.upload({
      file: await toFile(secret, "private.bin"),
      fileName: "private.bin",
      isPrivateFile: true,
    });
    const urlEndpoint = sb.info.imagekit.urlEndpoint;
    const unsigned = await fetch(uploaded.url);
    assert.equal(unsigned.status, 401);
    await unsigned.arrayBuffer();
    const forever = client.helper.buildSrc({ urlEndpoint, src: uploaded.filePath, signed: true });
    assert.match(forever, /[?&]ik-s=/);
    assert.deepEqual(await download(forever), secret);
    const expiring = client.helper.buildSrc({ urlEndpoint, src: uploaded.filePath, signed: true, expiresIn: 300 });
    assert.match(expiring, /[?&]ik-t=\d+&ik-s=/);
    assert.deepEqual(await download(expiring), secret);
    const tampered = expiring.replace(/ik-s=([0-9a-f])/, (_, c) => `ik-s=${c === "0" ? "1" : "0"}`);
    const refused = await fetch(tampered);
    assert.equal(refused.status, 401);
    await refused.arrayBuffer();
  });
});

describe("refusals: ImageKit's status and message, never a broken connection", () => {
  test("a wrong private key, ten 4 MiB uploads on keep-alive", async () => {
    const wrong = sdk("private_not_the_key");
    const big = randomBytes(4 * 1024 * 1024);
    for (let i = 0; i < 10; i++) {
      const err = await refusal(wrong.files.upload({ file: await toFile(big, "big.bin"), fileName: "big.bin" }));
      assert.equal(err.status, 401, `try ${i}`);
      assert.match(err.error.message, /cannot be authenticated/);
    }
    // The same key is refused by the files API.
    const err = await refusal(wrong.files.get("0123456789abcdef01234567"));
    assert.equal(err.status, 401);
  });

  test("V1 tokens (the SDK's getAuthenticationParameters): reused, expired, tampered", async () => {
    const uploader = tokenClient();
    const publicKey = sb.info.imagekit.publicKey;
    const upload = (auth, name) =>
      // Token first: the sandbox judges it before the file arrives.
      uploader.files.upload({ ...auth, publicKey, fileName: name, file: Buffer.from("v1 bytes").toString("base64") });
    const auth = client.helper.getAuthenticationParameters();
    const ok = await upload(auth, "v1.txt");
    assert.match(ok.filePath, /^\/v1_/);

    let err = await refusal(upload(auth, "again.txt"));
    assert.equal(err.status, 403);
    assert.match(err.error.message, /already been used/);

    const now = Math.floor(Date.now() / 1000);
    err = await refusal(upload(client.helper.getAuthenticationParameters(randomUUID(), now - 10), "old.txt"));
    assert.equal(err.status, 403);
    assert.match(err.error.message, /expired/);

    const fresh = client.helper.getAuthenticationParameters();
    const tampered = { ...fresh, signature: fresh.signature.replace(/^./, (c) => (c === "0" ? "1" : "0")) };
    err = await refusal(upload(tampered, "forged.txt"));
    assert.equal(err.status, 401);
    assert.match(err.error.message, /signature does not match/);
    // The forged attempt did not spend the real token.
    const later = await upload(fresh, "later.txt");
    assert.ok(later.fileId);
  });

  test("V2 JWTs (client.beta.v2.files.upload): reused, expired, tampered", async () => {
    const uploader = tokenClient();
    const file = () => toFile(Buffer.from("v2 bytes"), "v2.txt");
    const token = jwt({ fileName: "v2.txt" });
    const ok = await uploader.beta.v2.files.upload({ token, fileName: "v2.txt", file: await file() });
    assert.match(ok.filePath, /^\/v2_/);

    let err = await refusal(uploader.beta.v2.files.upload({ token, fileName: "v2.txt", file: await file() }));
    assert.equal(err.status, 403);
    assert.match(err.error.message, /already been used/);

    const now = Math.floor(Date.now() / 1000);
    const expired = jwt({ fileName: "v2.txt" }, { iat: now - 1000, exp: now - 10 });
    err = await refusal(uploader.beta.v2.files.upload({ token: expired, fileName: "v2.txt", file: await file() }));
    assert.equal(err.status, 403);
    assert.match(err.error.message, /expired/);

    const [header, , signature] = jwt({ fileName: "v2.txt" }).split(".");
    const tampered = `${header}.${base64url({ fileName: "other.txt", iat: now, exp: now + 600 })}.${signature}`;
    err = await refusal(uploader.beta.v2.files.upload({ token: tampered, fileName: "other.txt", file: await file() }));
    assert.equal(err.status, 401);
    assert.match(err.error.message, /signature does not match/);

    const wrongKey = jwt({ fileName: "v2.txt" }, { key: "private_not_the_key" });
    err = await refusal(uploader.beta.v2.files.upload({ token: wrongKey, fileName: "v2.txt", file: await file() }));
    assert.equal(err.status, 401);
  });
});

test("soak: 500 SDK uploads over keep-alive connections, no connection errors", async (t) => {
  const total = 500;
  const concurrency = 8;
  const before = (await sb.ledger()).length;
  let next = 0;
  let connectionErrors = 0;
  const otherErrors = [];
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      try {
        await client.files.upload({
          file: await toFile(Buffer.from(`soak ${i} ${randomUUID()}`), `soak-${i}.txt`),
          fileName: `soak-${i}.txt`,
          folder: "/soak",
        });
      } catch (err) {
        if (err instanceof APIConnectionError) connectionErrors++;
        else otherErrors.push(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(`${total} uploads in ${seconds.toFixed(1)} s (${(total / seconds).toFixed(0)}/s), ${concurrency} at a time`);
  assert.equal(connectionErrors, 0);
  assert.deepEqual(otherErrors, []);
  assert.equal((await sb.ledger()).length - before, total);
  assert.ok(seconds < 120, `the soak took ${seconds} s`);
});
