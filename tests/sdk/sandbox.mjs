// A `dropkey sandbox` of its own for each SDK test file: the real binary, on a free loopback
// port, with a fresh root and key. Its first stdout line says where it listens and the account
// values a client needs; `stop()` ends it (SIGTERM) and waits.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const DROPKEY = resolve(process.env.DROPKEY_BIN ?? join(ROOT, "target/debug/dropkey"));

/** Starts a sandbox; `args` are extra `dropkey sandbox` flags (e.g. `--fail-rate`). */
export async function startSandbox(args = []) {
  const dir = await mkdtemp(join(tmpdir(), "dropkey-sdk-"));
  const secret = `private_sdk_${randomBytes(12).toString("hex")}`;
  await writeFile(join(dir, "config.toml"), "");
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DROPKEY_")));
  const child = spawn(DROPKEY, ["sandbox", "--listen", "127.0.0.1:0", "--root", join(dir, "root"), ...args], {
    env: {
      ...env,
      DROPKEY_SECRET_SANDBOX: secret,
      DROPKEY_CONFIG: join(dir, "config.toml"),
      DROPKEY_DATA_DIR: join(dir, "data"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-10_000);
  });
  const first = await new Promise((resolveLine, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => resolveLine(line));
    child.once("exit", (code) => reject(new Error(`dropkey sandbox exited (${code}) before listening:\n${stderr}`)));
  });
  const info = JSON.parse(first);
  return {
    info,
    secret,
    base: info.imagekit.apiUrl,
    stderr: () => stderr,
    /** The ledger's complete lines (the sandbox appends to it meanwhile). */
    async ledger() {
      const text = await readFile(info.ledger, "utf8").catch(() => "");
      const end = text.lastIndexOf("\n");
      return end < 0 ? [] : text.slice(0, end).split("\n").map((l) => JSON.parse(l));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
