// The upload-token guide's browser client flow, for real: a page served from its own origin asks `dropkey serve`
// for an upload token (a CORS request with a bearer header), then uploads straight to the
// sandbox with fetch + FormData, sending exactly the fields the token signs. A page from an
// origin not on the allow-list cannot read the token server's answers.
//
// Needs the debug `dropkey` binary (`cargo build`) and Debian's Chromium at /usr/bin/chromium.
// Run from the repository root: `node --test tests/browser/`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DROPKEY = process.env.DROPKEY_BIN ?? join(ROOT, 'target/debug/dropkey');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const KEY = `private_browser_${randomBytes(12).toString('hex')}`;

// The page: the upload-token guide's vanilla client, with the token endpoint's `fields` sent as signed.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Dropkey browser upload</title>
<script>
async function uploadWithToken(serveBase, bearer, name, bytes) {
  const file = new File([new Uint8Array(bytes)], name, { type: 'image/png' });
  const tokenRes = await fetch(serveBase + '/api/media/get-upload-token?fileName=' + encodeURIComponent(file.name), {
    method: 'GET',
    headers: { 'Authorization': 'Bearer ' + bearer },
  });
  const tokenData = await tokenRes.json();
  if (!tokenRes.ok) return { stage: 'token', status: tokenRes.status, body: tokenData };
  const { token, uploadUrl, fields } = tokenData.data;
  const formData = new FormData();
  formData.append('file', file);
  for (const [key, value] of Object.entries(fields)) formData.append(key, value);
  formData.append('token', token);
  const uploadRes = await fetch(uploadUrl, { method: 'POST', body: formData });
  return { stage: 'upload', status: uploadRes.status, body: await uploadRes.json(), fields };
}
async function tryToken(serveBase, bearer) {
  try {
    const res = await fetch(serveBase + '/api/media/get-upload-token?fileName=x.png', {
      headers: { 'Authorization': 'Bearer ' + bearer },
    });
    return { read: true, status: res.status };
  } catch (err) {
    return { read: false, error: String(err) };
  }
}
</script>
<h1>upload</h1>`;

const children = [];
const servers = [];
let work;
let sandboxBase;
let serveBase;
let bearer;
let allowedOrigin;
let otherOrigin;
let context;

function dropkey(args, env, config, data) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DROPKEY_')));
  return { cmd: DROPKEY, args: ['--config', config, '--data-dir', data, ...args], env: { ...clean, ...env } };
}

/** Starts a long-running dropkey command and resolves with its first stdout line as JSON. */
function startLongRunning({ cmd, args, env }) {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  return new Promise((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolvePromise(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${stderr}`)));
  });
}

function staticServer() {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  servers.push(server);
  return new Promise((resolvePromise) => {
    server.listen(0, '127.0.0.1', () => resolvePromise(`http://127.0.0.1:${server.address().port}`));
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'dropkey-browser-'));
  // The sandbox, in its own process, with the built-in accounts secured by KEY.
  const emptyConfig = join(work, 'sandbox.toml');
  writeFileSync(emptyConfig, '');
  const sandbox = await startLongRunning(dropkey(
    ['sandbox', '--listen', '127.0.0.1:0', '--root', join(work, 'sandbox')],
    { DROPKEY_SECRET_SANDBOX: KEY }, emptyConfig, join(work, 'sandbox-data')));
  sandboxBase = `http://${sandbox.listen}`;

  allowedOrigin = await staticServer();
  otherOrigin = await staticServer();

  // The token server: one profile pointing at the sandbox; only the page's origin may call it.
  const config = join(work, 'serve.toml');
  const data = join(work, 'serve-data');
  writeFileSync(config, `
[profiles.ik]
provider = "imagekit"
auth = "v2"
public_key = "${sandbox.imagekit.publicKey}"
url_endpoint = "${sandbox.imagekit.urlEndpoint}"
upload_url = "${sandbox.imagekit.uploadUrl}"
api_url = "${sandbox.imagekit.apiUrl}"
folder = "/uploads/chat"
tags = ["chat", "media"]
use_unique_file_name = true

[serve]
cors_origins = ["${allowedOrigin}"]
`);
  const add = dropkey(['serve', 'token', 'add', 'browser'], {}, config, data);
  bearer = JSON.parse(execFileSync(add.cmd, add.args, { env: add.env })).token;
  const serve = await startLongRunning(dropkey(['serve', '--listen', '127.0.0.1:0'], { DROPKEY_SECRET_IK: KEY }, config, data));
  serveBase = `http://${serve.listen}`;

  context = await chromium.launchPersistentContext(join(work, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
});

after(async () => {
  await context?.close();
  for (const server of servers) server.close();
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a page gets a token from dropkey serve and uploads straight to the sandbox', async () => {
  const page = await context.newPage();
  await page.goto(`${allowedOrigin}/`);
  const bytes = Array.from(randomBytes(4096));
  const result = await page.evaluate(
    ([base, token, data]) => uploadWithToken(base, token, 'hello world.png', data),
    [serveBase, bearer, bytes],
  );
  assert.equal(result.stage, 'upload', JSON.stringify(result));
  assert.equal(result.status, 200, JSON.stringify(result));
  assert.deepEqual(result.fields, {
    fileName: 'hello world.png', folder: '/uploads/chat', tags: 'chat,media', useUniqueFileName: 'true',
  });
  assert.ok(result.body.filePath.startsWith('/uploads/chat/'), JSON.stringify(result.body));
  assert.deepEqual(result.body.tags, ['chat', 'media']);
  // What landed is what the page sent.
  const stored = Buffer.from(await (await fetch(result.body.url)).arrayBuffer());
  assert.deepEqual([...stored], bytes);
  const ledger = readFileSync(join(work, 'sandbox', 'ledger.jsonl'), 'utf8').trim().split('\n');
  assert.equal(ledger.length, 1);
  await page.close();
});

test('a page from an origin not on the allow-list cannot read the token server', async () => {
  const page = await context.newPage();
  await page.goto(`${otherOrigin}/`);
  const result = await page.evaluate(([base, token]) => tryToken(base, token), [serveBase, bearer]);
  assert.equal(result.read, false, JSON.stringify(result));
  // The allowed origin can, and a wrong bearer token is a readable 401 there.
  await page.goto(`${allowedOrigin}/`);
  const ok = await page.evaluate(([base]) => tryToken(base, 'dk_wrong'), [serveBase]);
  assert.deepEqual(ok, { read: true, status: 401 });
  await page.close();
});
