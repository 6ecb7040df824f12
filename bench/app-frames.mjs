// Frame times of the real window while 1,000 files upload to the local sandbox: a
// requestAnimationFrame loop in the page records every frame's delta, the files are queued
// through the window's paste handler (as in tests/e2e), and the deltas are read back over
// WebDriver when the queue is done. Prints one Markdown table row. Used by bench/app.sh.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const REPO = resolve(import.meta.dirname, "..");
const require = createRequire(join(REPO, "tests/e2e/package.json"));
const { remote } = await import(pathToFileURL(require.resolve("webdriverio")).href);
const APP = resolve(process.env.DROPKEY_APP ?? join(REPO, "target/debug/dropkey-app"));
const FILES = 1000;

const freePort = () =>
  new Promise((ok) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });

const tmp = await mkdtemp(join(tmpdir(), "dropkey-bench-"));
await mkdir(join(tmp, "in"));
await mkdir(join(tmp, "data"));
await writeFile(join(tmp, "config.toml"), `[sandbox]\nlisten = "127.0.0.1:${await freePort()}"\n`);
const paths = [];
for (let i = 0; i < FILES; i += 1) {
  const path = join(tmp, "in", `file-${String(i).padStart(4, "0")}.bin`);
  await writeFile(path, Buffer.alloc(64 * 1024, i % 251));
  paths.push(path);
}

const port = await freePort();
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DROPKEY_")));
const driver = spawn(
  process.env.TAURI_DRIVER ?? join(homedir(), ".cargo/bin/tauri-driver"),
  ["--port", String(port), "--native-port", String(await freePort())],
  {
    env: {
      ...env,
      DROPKEY_CONFIG: join(tmp, "config.toml"),
      DROPKEY_DATA_DIR: join(tmp, "data"),
      XDG_CONFIG_HOME: join(tmp, "xdg"),
    },
    detached: true,
    stdio: "ignore",
  },
);
let browser;
try {
  for (let i = 0; i < 200; i += 1) {
    const up = await new Promise((ok) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => (s.destroy(), ok(true)));
      s.on("error", () => ok(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await remote({
    hostname: "127.0.0.1",
    port,
    logLevel: "error",
    capabilities: { "wdio:enforceWebDriverClassic": true, "tauri:options": { application: APP } },
  });
  await browser.$('[data-testid="dest-profile"]').waitForExist({ timeout: 30_000 });
  await browser.waitUntil(async () => (await browser.$('[data-testid="dest-profile"]').getValue()) === "sandbox");
  await browser.execute(() => {
    const frames = [];
    let last = performance.now();
    const tick = (now) => {
      frames.push(now - last);
      last = now;
      if (!window.__benchStop) requestAnimationFrame(tick);
    };
    window.__benchFrames = frames;
    requestAnimationFrame(tick);
  });
  // Baseline: the same page, idle, for 3 s (Xvfb has no vsync; WebKit paints in software).
  await new Promise((r) => setTimeout(r, 3000));
  const idleFrames = await browser.execute(() => window.__benchFrames.splice(0).slice(1));
  const started = Date.now();
  await browser.execute((text) => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    document.body.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  }, paths.join("\n"));
  await browser.waitUntil(
    async () => ((await browser.$('[data-testid="queue-summary"]').getText().catch(() => "")) || "").startsWith(`${FILES} of ${FILES} uploaded`),
    { timeout: 300_000, interval: 250 },
  );
  const seconds = (Date.now() - started) / 1000;
  const frames = await browser.execute(() => {
    window.__benchStop = true;
    return window.__benchFrames.slice(1);
  });
  const sorted = [...frames].sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const mean = frames.reduce((a, b) => a + b, 0) / frames.length;
  const long = frames.filter((f) => f > 50).length;
  const idleMean = idleFrames.reduce((a, b) => a + b, 0) / Math.max(1, idleFrames.length);
  console.log(`| frame time idle (baseline, 3 s): ${idleFrames.length} frames | mean ${idleMean.toFixed(1)} ms | |`);
  console.log(
    `| frame time while ${FILES} files (64 KiB) upload in ${seconds.toFixed(1)} s: ${frames.length} frames | mean ${mean.toFixed(1)} ms, p95 ${pct(0.95).toFixed(1)} ms, max ${sorted.at(-1).toFixed(0)} ms, ${long} over 50 ms | smooth (p95 ≲ 33 ms) |`,
  );
} finally {
  await browser?.deleteSession().catch(() => {});
  try {
    process.kill(-driver.pid, "SIGTERM");
  } catch {}
  await rm(tmp, { recursive: true, force: true });
}
