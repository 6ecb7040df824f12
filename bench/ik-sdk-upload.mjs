// The reference client for the small-files benchmark: the official ImageKit Node SDK
// uploading files one by one (server-side upload, private key over HTTP Basic), as a script
// without Dropkey would. Prints {"files", "seconds"} as JSON.
// Usage: node ik-sdk-upload.mjs UPLOAD_ENDPOINT PUBLIC_KEY DIR   (private key in IK_PRIVATE_KEY)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ImageKit from "imagekit";

const [endpoint, publicKey, dir] = process.argv.slice(2);
const imagekit = new ImageKit({
  publicKey,
  privateKey: process.env.IK_PRIVATE_KEY,
  urlEndpoint: "http://127.0.0.1/unused",
  uploadEndpoint: endpoint,
});
const files = readdirSync(dir).sort();
const started = process.hrtime.bigint();
for (const name of files) {
  await imagekit.upload({ file: readFileSync(join(dir, name)), fileName: name, folder: "/bench-sdk" });
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ files: files.length, seconds }));
// The SDK keeps its HTTP agent alive; the measurement is done.
process.exit(0);
