// Golden test-vector generator for Dropkey's signing code.
//
// Runs the OFFICIAL Node SDKs (imagekit, cloudinary, jsonwebtoken) with fixed
// keys, fixed tokens and a mocked clock, and writes sdk_vectors.json.
// Everything is deterministic: running it twice gives byte-identical output.
//
//   cd tests/vectors && npm install --no-audit --no-fund && node gen.mjs

import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// The Cloudinary SDK reads these from the environment on first config() call.
delete process.env.CLOUDINARY_URL;
delete process.env.CLOUDINARY_ACCOUNT_URL;
delete process.env.CLOUDINARY_API_PROXY;

const ImageKit = require("imagekit");
const cloudinary = require("cloudinary").v2;
const jwt = require("jsonwebtoken");

const pkgVersion = (name) =>
  JSON.parse(fs.readFileSync(path.join(here, "node_modules", name, "package.json"), "utf8")).version;

// ---------------------------------------------------------------------------
// Clock mocking. Both SDKs read the clock through `new Date().getTime()`, not
// `Date.now()`, so the whole global Date is swapped while `fn` runs.
// ---------------------------------------------------------------------------
const RealDate = Date;
function withNow(nowSeconds, fn) {
  const ms = nowSeconds * 1000;
  class MockDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(ms);
      else super(...args);
    }
    static now() {
      return ms;
    }
  }
  globalThis.Date = MockDate;
  try {
    return fn();
  } finally {
    globalThis.Date = RealDate;
  }
}

const hmacHex = (algo, key, msg) => crypto.createHmac(algo, key).update(msg, "utf8").digest("hex");
const hashHex = (algo, msg) => crypto.createHash(algo).update(msg, "utf8").digest("hex");
const b64urlDecode = (s) => Buffer.from(s, "base64url").toString("utf8");
const byteSort = (keys) =>
  [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));

// ===========================================================================
// ImageKit V1: getAuthenticationParameters(token, expire)
// ===========================================================================
const IK_PUBLIC = "public_test_key_abc";
const IK_PRIVATE = "private_test_key_123";
const IK_ENDPOINT = "https://ik.imagekit.io/dropkey_demo";

const imagekitV1Cases = [
  { name: "basic_uuid_token", private_key: IK_PRIVATE, token: "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", expire: 1700001800 },
  { name: "second_uuid_token", private_key: IK_PRIVATE, token: "00000000-0000-4000-8000-000000000000", expire: 1735689600 },
  { name: "max_expire_9999999999", private_key: IK_PRIVATE, token: "d3b07384-d113-4ec6-a9f2-6a5e1b2c3d4e", expire: 9999999999 },
  { name: "short_token", private_key: IK_PRIVATE, token: "a", expire: 1 },
  { name: "token_with_spaces_amp_equals_slash_unicode", private_key: IK_PRIVATE, token: "tok en&a=b/c,d ü😀", expire: 1700000060 },
  { name: "unicode_private_key", private_key: "private_ключ_ü_123", token: "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", expire: 1700001800 },
  {
    name: "private_key_longer_than_hmac_block",
    private_key: "private_" + "0123456789abcdef".repeat(5),
    token: "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    expire: 1700001800,
  },
];

const imagekit_v1 = imagekitV1Cases.map((c) => {
  const ik = new ImageKit({ publicKey: IK_PUBLIC, privateKey: c.private_key, urlEndpoint: IK_ENDPOINT });
  // Clock pinned so an accidental fallback to the default expiry would still be deterministic.
  const r = withNow(1700000000, () => ik.getAuthenticationParameters(c.token, c.expire));
  assert.equal(r.token, c.token);
  assert.equal(r.expire, c.expire);
  assert.equal(r.signature, hmacHex("sha1", c.private_key, c.token + String(c.expire)));
  return { name: c.name, private_key: c.private_key, token: c.token, expire: c.expire, signature: r.signature };
});

// ===========================================================================
// ImageKit V2 (Upload API v2 JWT), signed with jsonwebtoken as in ImageKit docs
// ===========================================================================
const imagekitV2Cases = [
  { name: "file_name_only", payload: { fileName: "photo.jpg" }, iat: 1700000000, exp: 1700003600 },
  {
    name: "file_name_and_folder",
    payload: { folder: "/dropkey/2024/05", fileName: "report.pdf" },
    iat: 1700000000,
    exp: 1700003600,
  },
  {
    name: "tags_and_use_unique_file_name_false",
    payload: { useUniqueFileName: "false", tags: "holiday,beach,summer 2024", fileName: "beach.png" },
    iat: 1710000000,
    exp: 1710000600,
  },
  {
    name: "custom_metadata_json_string",
    payload: {
      fileName: "shoe.jpg",
      customMetadata: JSON.stringify({ brand: "Nike", color: "red", size: 42, onSale: true }),
    },
    iat: 1700000000,
    exp: 1700003600,
  },
  {
    name: "unicode_file_name",
    payload: { fileName: "фото ü été 😀 日本.jpg", folder: "/Ünïcödé/папка" },
    iat: 1700000000,
    exp: 1700003600,
  },
  { name: "no_params", payload: {}, iat: 1700000000, exp: 1700003600 },
  {
    name: "many_params_special_chars",
    payload: {
      fileName: "Q&A = notes, v2 (final)+.txt",
      folder: "/a b/c&d=e/",
      isPrivateFile: "true",
      overwriteFile: "true",
      useUniqueFileName: "true",
      responseFields: "tags,customCoordinates,isPrivateFile",
      description: 'line1\nline2\t"quoted" back\\slash </script> \u0001',
      checks: '"file.size" < "1mb"',
    },
    iat: 1700000000,
    exp: 1700000060,
  },
  {
    name: "different_key_pair",
    private_key: "private_other_key_XYZ_987",
    public_key: "public_other_key_XYZ_987",
    payload: { fileName: "a.jpg", tags: "", folder: "/" },
    iat: 1800000000,
    exp: 1800003600,
  },
];

const imagekit_v2 = imagekitV2Cases.map((c) => {
  const privateKey = c.private_key ?? IK_PRIVATE;
  const publicKey = c.public_key ?? IK_PUBLIC;
  for (const v of Object.values(c.payload)) assert.equal(typeof v, "string");

  // Payload keys in byte-sorted order, then iat, then exp.
  const signed = {};
  for (const k of byteSort(Object.keys(c.payload))) signed[k] = c.payload[k];
  signed.iat = c.iat;
  signed.exp = c.exp;

  const token = withNow(c.iat, () =>
    jwt.sign(signed, privateKey, { algorithm: "HS256", header: { alg: "HS256", typ: "JWT", kid: publicKey } }),
  );

  const [h, p, s] = token.split(".");
  const headerJson = b64urlDecode(h);
  const payloadJson = b64urlDecode(p);
  assert.equal(headerJson, `{"alg":"HS256","typ":"JWT","kid":${JSON.stringify(publicKey)}}`);
  assert.equal(payloadJson, JSON.stringify(signed));
  assert.deepEqual(Object.keys(JSON.parse(payloadJson)), [...byteSort(Object.keys(c.payload)), "iat", "exp"]);
  assert.equal(h, Buffer.from(headerJson, "utf8").toString("base64url"));
  assert.equal(p, Buffer.from(payloadJson, "utf8").toString("base64url"));
  assert.equal(s, crypto.createHmac("sha256", privateKey).update(`${h}.${p}`).digest("base64url"));
  jwt.verify(token, privateKey, { algorithms: ["HS256"], clockTimestamp: c.iat });

  const sortedPayload = {};
  for (const k of byteSort(Object.keys(c.payload))) sortedPayload[k] = c.payload[k];
  return {
    name: c.name,
    private_key: privateKey,
    public_key: publicKey,
    payload: sortedPayload,
    iat: c.iat,
    exp: c.exp,
    header_json: headerJson,
    payload_json: payloadJson,
    token,
  };
});

// ===========================================================================
// ImageKit signed URLs: imagekit.url({path, urlEndpoint, signed, expireSeconds})
// ===========================================================================
const imagekitUrlCases = [
  { name: "leading_slash_basic", url_endpoint: IK_ENDPOINT, path: "/default-image.jpg", expire_seconds: 60, now: 1700000000 },
  { name: "nested_folders", url_endpoint: IK_ENDPOINT, path: "/uploads/2024/05/17/photo.png", expire_seconds: 300, now: 1715904000 },
  { name: "spaces_and_unicode", url_endpoint: IK_ENDPOINT, path: "/my folder/фото ü été 😀.jpg", expire_seconds: 3600, now: 1700000000 },
  { name: "endpoint_trailing_slash_path_without_leading_slash", url_endpoint: IK_ENDPOINT + "/", path: "docs/report.pdf", expire_seconds: 60, now: 1700000000 },
  { name: "endpoint_trailing_slash_path_with_leading_slash_double_slash", url_endpoint: IK_ENDPOINT + "/", path: "/docs/report.pdf", expire_seconds: 60, now: 1700000000 },
  { name: "custom_domain_root_endpoint_path_without_leading_slash", url_endpoint: "https://media.example.com", path: "images/a b.png", expire_seconds: 120, now: 1700000000 },
  { name: "custom_domain_root_endpoint_path_with_leading_slash_double_slash", url_endpoint: "https://media.example.com", path: "/images/a.png", expire_seconds: 120, now: 1700000000 },
  { name: "reserved_chars_not_encoded_in_path", url_endpoint: IK_ENDPOINT, path: "/docs/Q&A = notes, v2 (final)+[draft]'x'~!$;@|^.pdf", expire_seconds: 60, now: 1700000000 },
  { name: "question_hash_percent_quote_braces", url_endpoint: IK_ENDPOINT, path: '/weird/100% #1?"<a>"`{b}`.jpg', expire_seconds: 60, now: 1700000000 },
  { name: "no_expire_seconds_uses_9999999999", url_endpoint: IK_ENDPOINT, path: "/default-image.jpg", expire_seconds: null, now: 1700000000 },
  { name: "transformation_width_800", url_endpoint: IK_ENDPOINT, path: "/photos/cat.jpg", expire_seconds: 600, now: 1700000000, transformation: [{ width: 800 }] },
  { name: "transformation_width_800_endpoint_trailing_slash_nested_unicode", url_endpoint: IK_ENDPOINT + "/", path: "/photos/2024/chat ü.jpg", expire_seconds: 600, now: 1700000000, transformation: [{ width: 800 }] },
];

function ikStringToSign(url, urlEndpoint, expiry) {
  // Reproduces builder.js getSignature(): the URL as built *before* ik-t/ik-s
  // are appended, minus (urlEndpoint with a trailing slash), plus the expiry.
  const u = new URL(url);
  u.searchParams.delete("ik-t");
  u.searchParams.delete("ik-s");
  const endpoint = urlEndpoint.endsWith("/") ? urlEndpoint : urlEndpoint + "/";
  return u.href.replace(endpoint, "") + expiry;
}

const imagekit_signed_url = imagekitUrlCases.map((c) => {
  const ik = new ImageKit({ publicKey: IK_PUBLIC, privateKey: IK_PRIVATE, urlEndpoint: "https://ik.imagekit.io/unused_default" });
  const opts = { path: c.path, urlEndpoint: c.url_endpoint, signed: true };
  if (c.expire_seconds !== null) opts.expireSeconds = c.expire_seconds;
  if (c.transformation) opts.transformation = c.transformation;
  const url = withNow(c.now, () => ik.url(opts));

  const u = new URL(url);
  const keys = [...u.searchParams.keys()];
  const expiry = c.expire_seconds !== null ? String(c.now + c.expire_seconds) : "9999999999";
  if (c.expire_seconds !== null) {
    assert.deepEqual(keys, ["ik-t", "ik-s"]);
    assert.equal(u.searchParams.get("ik-t"), expiry);
  } else {
    assert.deepEqual(keys, ["ik-s"]);
  }
  const stringToSign = ikStringToSign(url, c.url_endpoint, expiry);
  assert.ok(!/[^\x00-\x7f]/.test(stringToSign));
  assert.equal(u.searchParams.get("ik-s"), hmacHex("sha1", IK_PRIVATE, stringToSign));

  const out = {
    name: c.name,
    private_key: IK_PRIVATE,
    url_endpoint: c.url_endpoint,
    path: c.path,
    expire_seconds: c.expire_seconds,
    now: c.now,
  };
  if (c.transformation) out.transformation = c.transformation;
  out.string_to_sign = stringToSign;
  out.url = url;
  return out;
});

// ===========================================================================
// Cloudinary api_sign_request
// ===========================================================================
// Mirror of cloudinary/lib/utils/index.js api_string_to_sign() (not exported).
function cldStringToSign(params, signatureVersion = 2) {
  const pairs = Object.entries(params)
    .map(([k, v]) => [String(k), Array.isArray(v) ? v.join(",") : v])
    .filter(([, v]) => v !== null && v !== undefined && v !== "");
  pairs.sort((a, b) => a[0].localeCompare(b[0]));
  return pairs
    .map(([k, v]) => {
      const s = `${k}=${v}`;
      return signatureVersion >= 2 ? s.replace(/&/g, "%26") : s;
    })
    .join("&");
}

const CLD_SECRET = "cld_secret_ABCdef123";
const cloudinarySignCases = [
  { name: "timestamp_folder_tags_array_sha1", algorithm: "sha1", params: { timestamp: 1700000000, folder: "dropkey/2024", tags: ["holiday", "beach"] } },
  { name: "timestamp_folder_tags_array_sha256", algorithm: "sha256", params: { timestamp: 1700000000, folder: "dropkey/2024", tags: ["holiday", "beach"] } },
  { name: "type_private_use_filename_booleans", algorithm: "sha1", params: { type: "private", use_filename: true, unique_filename: false, timestamp: 1700000000 } },
  { name: "uploader_style_safe_bool_numbers", algorithm: "sha1", params: { timestamp: 1700000000, type: "private", use_filename: 1, unique_filename: 0, overwrite: 1 } },
  { name: "value_with_amp_and_equals", algorithm: "sha1", params: { timestamp: 1700000000, public_id: "q&a=1", context: "caption=Q&A|alt=a=b&c" } },
  { name: "unicode_values", algorithm: "sha256", params: { timestamp: 1700000000, public_id: "фото/ü été 😀", folder: "Ünïcödé 日本" } },
  { name: "empty_string_and_empty_array_dropped", algorithm: "sha1", params: { timestamp: 1700000000, folder: "", public_id: "kept", tags: [] } },
  { name: "public_id_with_slashes", algorithm: "sha1", params: { timestamp: 1700000000, public_id: "dropkey/users/42/avatar", invalidate: true } },
  { name: "eager_transformations_string", algorithm: "sha256", params: { timestamp: 1700000000, public_id: "sample", eager: "c_fill,w_300,h_200|w_100,c_scale/e_sepia", eager_async: true } },
  { name: "commas_spaces_in_array_elements", algorithm: "sha1", params: { timestamp: 1700000000, tags: ["a,b", "c d", "e&f"] } },
  { name: "private_download_style_params", algorithm: "sha1", params: { timestamp: 1700000000, public_id: "dropkey/invoices/receipt", format: "pdf", type: "private", attachment: true, expires_at: 1700000060 } },
  { name: "single_param_timestamp_only_sha256", algorithm: "sha256", params: { timestamp: 1 } },
];

const cloudinary_sign = cloudinarySignCases.map((c) => {
  cloudinary.config(true);
  const sigDefaultOrExplicit =
    c.algorithm === "sha1"
      ? cloudinary.utils.api_sign_request(c.params, CLD_SECRET)
      : cloudinary.utils.api_sign_request(c.params, CLD_SECRET, "sha256");
  // Same result when chosen via the explicit argument or via global config.
  const sigExplicit = cloudinary.utils.api_sign_request(c.params, CLD_SECRET, c.algorithm);
  cloudinary.config({ signature_algorithm: c.algorithm });
  const sigViaConfig = cloudinary.utils.api_sign_request(c.params, CLD_SECRET);
  cloudinary.config(true);
  assert.equal(sigExplicit, sigDefaultOrExplicit);
  assert.equal(sigViaConfig, sigDefaultOrExplicit);

  const stringToSign = cldStringToSign(c.params);
  assert.equal(hashHex(c.algorithm, stringToSign + CLD_SECRET), sigDefaultOrExplicit);
  // Keys used here are [a-z_]+, for which localeCompare == byte order.
  const keyOrder = stringToSign === "" ? [] : stringToSign.split("&").map((kv) => kv.split("=")[0]);
  assert.deepEqual(keyOrder, byteSort(keyOrder));

  return {
    name: c.name,
    api_secret: CLD_SECRET,
    params: c.params,
    algorithm: c.algorithm,
    note:
      c.algorithm === "sha1"
        ? "cloudinary.utils.api_sign_request(params, api_secret) — sha1 is the SDK default (DEFAULT_SIGNATURE_ALGORITHM)"
        : "cloudinary.utils.api_sign_request(params, api_secret, 'sha256') — 3rd argument signature_algorithm; equivalently cloudinary.config({signature_algorithm: 'sha256'}) then api_sign_request(params, api_secret)",
    string_to_sign: stringToSign,
    signature: sigDefaultOrExplicit,
  };
});

// ===========================================================================
// Cloudinary private_download_url
// ===========================================================================
const cloudinaryDownloadCases = [
  { name: "image_in_folder_jpg", cloud_name: "dropkey-test", public_id: "dropkey/invoices/2024/receipt", format: "jpg", resource_type: "image", attachment: null, timestamp: 1700000000 },
  { name: "image_png_attachment_true", cloud_name: "dropkey-test", public_id: "photos/cat", format: "png", resource_type: "image", attachment: true, timestamp: 1700000000 },
  { name: "raw_pdf_attachment_false", cloud_name: "dropkey-test", public_id: "docs/report final.pdf", format: "pdf", resource_type: "raw", attachment: false, timestamp: 1710000000 },
  { name: "raw_empty_format_dropped", cloud_name: "dropkey-test", public_id: "docs/archive.zip", format: "", resource_type: "raw", attachment: true, timestamp: 1710000000 },
  { name: "video_mp4_unicode_public_id", cloud_name: "dropkey-test", public_id: "vidéos/été 2024/clip ü 😀", format: "mp4", resource_type: "video", attachment: null, timestamp: 1720000000 },
  { name: "special_chars_public_id", cloud_name: "other-cloud_1", public_id: "a'b(c)*!~.-_ & = + , ; @ #", format: "webp", resource_type: "image", attachment: null, timestamp: 1700000000 },
];

const CLD_API_KEY = "123456789012345";
const cloudinary_private_download = cloudinaryDownloadCases.map((c) => {
  const expiresAt = c.timestamp + 60;
  cloudinary.config(true);
  cloudinary.config({ cloud_name: c.cloud_name, api_key: CLD_API_KEY, api_secret: CLD_SECRET });
  const opts = { resource_type: c.resource_type, type: "private", expires_at: expiresAt };
  if (c.attachment !== null) opts.attachment = c.attachment;
  const url = withNow(c.timestamp, () => cloudinary.utils.private_download_url(c.public_id, c.format, opts));
  cloudinary.config(true);

  const u = new URL(url);
  assert.equal(u.origin, "https://api.cloudinary.com");
  assert.equal(u.pathname, `/v1_1/${encodeURIComponent(c.cloud_name)}/${c.resource_type}/download`);
  // Signed params are exactly what sign_request() kept after clear_blank().
  const signedParams = {};
  for (const [k, v] of [
    ["timestamp", c.timestamp],
    ["public_id", c.public_id],
    ["format", c.format],
    ["type", "private"],
    ["attachment", c.attachment],
    ["expires_at", expiresAt],
  ]) {
    if (v !== null && v !== undefined && String(v).length > 0) signedParams[k] = v;
  }
  const stringToSign = cldStringToSign(signedParams);
  const signature = hashHex("sha1", stringToSign + CLD_SECRET);
  assert.deepEqual([...u.searchParams.keys()], [...Object.keys(signedParams), "signature", "api_key"]);
  assert.equal(u.searchParams.get("signature"), signature);
  assert.equal(u.searchParams.get("api_key"), CLD_API_KEY);
  assert.equal(u.searchParams.get("public_id"), c.public_id);

  return {
    name: c.name,
    cloud_name: c.cloud_name,
    api_key: CLD_API_KEY,
    api_secret: CLD_SECRET,
    public_id: c.public_id,
    format: c.format,
    resource_type: c.resource_type,
    type: "private",
    timestamp: c.timestamp,
    expires_at: expiresAt,
    attachment: c.attachment,
    string_to_sign: stringToSign,
    url,
  };
});

// ===========================================================================
// Findings that can be demonstrated live (embedded in notes below)
// ===========================================================================
const collationDemoKeys = ["a1", "a_b", "ab", "B", "a"];
const collationLocale = [...collationDemoKeys].sort((a, b) => a.localeCompare(b)).join(" ");
const collationBytes = byteSort(collationDemoKeys).join(" ");

const notes = [
  // ---- ImageKit V1
  "imagekit_v1 (imagekit/dist/libs/signature/index.js): signature = lowercase hex HMAC-SHA1(key = private_key as UTF-8, message = token + String(expire)), no separator. If token is falsy the SDK substitutes a random uuid v4; if expire is falsy (e.g. 0) it substitutes floor(now/1000) + 1800. The SDK does not validate that expire is in the future.",
  // ---- ImageKit V2
  "imagekit_v2 (jsonwebtoken sign.js + jws): header = Object.assign({alg, typ:'JWT', kid: options.keyid}, options.header) so key order is alg, typ, kid; header JSON is base64url'd from a 'binary' (latin1) string in jws, so kid must be ASCII. payload is JSON.stringify of the object in insertion order (vectors: payload keys byte-sorted, then iat, then exp), UTF-8, base64url without padding. signature = base64url(HMAC-SHA256(private_key, header_b64 + '.' + payload_b64)). jsonwebtoken keeps a provided numeric iat (it only substitutes Date.now when iat is falsy) and does not touch exp when no expiresIn option is given.",
  "imagekit_v2 JSON encoding (JS JSON.stringify): no whitespace; non-ASCII emitted raw as UTF-8 (no \\u escapes); '/' and '<' '>' '&' not escaped; double quote and backslash are escaped with a backslash; \\b \\f \\n \\r \\t use short escapes; other U+0000..U+001F use \\u00XX with lowercase hex; U+007F is emitted raw. serde_json's compact serializer should produce the same bytes for these inputs (not verified here: cargo was not run); see case many_params_special_chars.",
  // ---- ImageKit signed URL
  "imagekit_signed_url (imagekit/dist/libs/url/builder.js buildURL): u = new URL(urlEndpoint) (WHATWG URL); u.pathname = u.pathname + path (plain string concatenation, no slash normalisation) when there is no transformation; with a transformation in path position u.pathname = path.posix.join(u.pathname, 'tr:' + tr, path) (this DOES collapse duplicate slashes and resolve '.'/'..'). Then addLeadingSlash(pathname).",
  "imagekit_signed_url slash quirks: endpoint pathname '/demo' + path '/a.jpg' -> '/demo/a.jpg'; endpoint '/demo/' + '/a.jpg' -> '/demo//a.jpg' (double slash kept in the URL); custom-domain endpoint 'https://media.example.com' (pathname '/') + '/a.jpg' -> '//a.jpg'; endpoint '/demo' + 'a.jpg' (no leading slash) -> '/demoa.jpg' (SDK bug, not in vectors).",
  "imagekit_signed_url percent-encoding (WHATWG path setter, Node " + process.version + "): non-ASCII -> UTF-8 bytes as %XX uppercase hex; ASCII encoded: space %20, '\"' %22, '#' %23, '<' %3C, '>' %3E, '?' %3F, '`' %60, '{' %7B, '}' %7D, C0 controls and DEL. NOT encoded: '%' (passed through verbatim, even if not a valid escape), ! $ & ' ( ) * + , - . / : ; = @ [ ] ^ _ | ~. Backslash is turned into '/', ASCII tab/LF/CR are stripped, and '.'/'..' segments are resolved (all WHATWG URL parser behaviour).",
  "imagekit_signed_url string to sign: intermediate = URL href after path/transformation/query are set but BEFORE ik-t/ik-s are added (no '?' at all when there are no other query params). string_to_sign = intermediate.replace(addTrailingSlash(urlEndpoint), '') + expiry, where expiry = String(floor(now_ms/1000) + expireSeconds), or the literal '9999999999' when expireSeconds is absent/0. No separator between the URL part and the expiry. ik-s = lowercase hex HMAC-SHA1(private_key, string_to_sign). The replace is a plain first-occurrence substring replace of the endpoint as given by the caller, so an endpoint whose href form differs (uppercase host, explicit :443, non-ASCII path) is NOT stripped and the whole href gets signed. If the string to sign contains any char > 0x7F the SDK runs encodeURI on it, but the href is always ASCII so that branch never fires for these inputs.",
  "imagekit_signed_url query: queryParameters is a URLSearchParams seeded from the endpoint's own query, then options.queryParameters in insertion order, then 'tr' (only when transformationPosition = 'query'), then ik-t (= absolute expiry unix seconds, only when expireSeconds is given), then ik-s last. Serialisation is application/x-www-form-urlencoded (space -> '+', everything except A-Za-z0-9*-._ percent-encoded). With expireSeconds the URL ends '?ik-t=<expiry>&ik-s=<40 hex>'; without it '?ik-s=<40 hex>'. The host is lowercased and a default port dropped by URL parsing.",
  "imagekit_signed_url transformation: [{width: 800}] -> path segment 'tr:w-800' inserted right after the endpoint path, e.g. https://ik.imagekit.io/x/tr:w-800/photos/cat.jpg; multiple keys in one step are joined with ',' (e.g. tr:w-800,h-600), chained steps with ':' (tr:w-800:rt-90); key/value separator '-'. The tr segment is part of the signed string (e.g. 'tr:w-800/photos/cat.jpg1700000600').",
  // ---- Cloudinary
  "cloudinary_sign (cloudinary/lib/utils/index.js api_string_to_sign + api_sign_request): for each own key (Object.entries order), arrays are joined with ',' (no escaping of commas inside elements; null elements become ''), then pairs whose value is null, undefined or exactly '' are dropped (false, 0 and 'false' are kept; an empty array joins to '' and is dropped). Pairs are sorted by key with String.prototype.localeCompare (NOT byte order), each becomes `${key}=${value}` with JS String() conversion (true -> 'true', numbers in JS decimal form), and with signature_version >= 2 (the default; config signature_version = 1 disables it) every '&' in the whole 'key=value' string is replaced by '%26'; nothing else is escaped ('=' , '/', ',', spaces, non-ASCII stay raw UTF-8). Pairs are joined with '&'. signature = lowercase hex sha1/sha256(string_to_sign + api_secret) (plain hash of the concatenation, not an HMAC).",
  "cloudinary_sign algorithm selection: api_sign_request(params, api_secret, signature_algorithm = null, signature_version = null); algorithm = argument || cloudinary.config().signature_algorithm || 'sha1'; only 'sha1' and 'sha256' are accepted (anything else throws). sign_request()/private_download_url take it from options.signature_algorithm, falling back to config().",
  "cloudinary_sign key ordering: localeCompare equals byte order for keys made of [a-z_] (all real Cloudinary parameter names), but differs otherwise: e.g. keys " + JSON.stringify(collationDemoKeys) + " sort as '" + collationLocale + "' under localeCompare vs '" + collationBytes + "' by bytes ('_' sorts before digits, case-insensitive first). Vectors only use [a-z_] keys.",
  "cloudinary_sign exclusions: api_sign_request / api_string_to_sign exclude NO keys; they sign whatever object they are given (file, api_key, cloud_name, resource_type would be signed if passed). Exclusion happens in the callers: uploader build_upload_params() never contains file/api_key/cloud_name/resource_type; for remote-URL uploads `file` is added as an unsigned param after signing; sign_request() adds api_key AFTER computing the signature; cloud_name and resource_type only go into the URL path (api_url). So Rust must exclude file, cloud_name, resource_type, api_key and signature itself.",
  "cloudinary sign_request() (used by the uploader and private_download_url) first runs clear_blank(): drops keys whose value is null/undefined or whose String() is '' (empty arrays too) and filters falsy elements out of arrays, before api_sign_request. The uploader converts boolean options with as_safe_bool(): true/'true'/'1' -> 1 and false/'false'/'0' -> 0, so real uploads sign 'use_filename=1', not 'use_filename=true' (see case uploader_style_safe_bool_numbers).",
  // ---- Cloudinary private download
  "cloudinary_private_download (private_download_url): signed params object is built in the order timestamp, public_id, format, type, attachment, expires_at; clear_blank() drops null/undefined/'' (so format '' and attachment null are omitted, attachment false is KEPT as 'attachment=false'); signature computed as in cloudinary_sign (default sha1); then signature and api_key are appended. URL = 'https://api.cloudinary.com/v1_1/' + encodeURIComponent(cloud_name) + '/' + encodeURIComponent(resource_type || 'image') + '/download?' + querystring.stringify(params). Query order is exactly: timestamp, public_id, format, type, attachment, expires_at, signature, api_key (absent ones skipped). timestamp = options.timestamp || floor(now/1000).",
  "cloudinary_private_download query encoding: Node querystring.escape, i.e. the encodeURIComponent set: A-Za-z0-9 and - _ . ! ~ * ' ( ) unescaped; everything else %XX uppercase (space %20 not '+', '/' %2F, non-ASCII as UTF-8 bytes). The signature covers the RAW (unencoded) values; encoding is applied only to the URL.",
  "cloudinary config: ensureOption() reads cloud_name/api_key/api_secret from the call options first, then the global config object (mutated in place by cloudinary.config()); the CLOUDINARY_URL environment variable is parsed on first config() call (generator clears it). upload_prefix defaults to https://api.cloudinary.com.",
];

const output = {
  generated_by: {
    imagekit: pkgVersion("imagekit"),
    cloudinary: pkgVersion("cloudinary"),
    jsonwebtoken: pkgVersion("jsonwebtoken"),
    node: process.version,
  },
  notes,
  imagekit_v1,
  imagekit_v2,
  imagekit_signed_url,
  cloudinary_sign,
  cloudinary_private_download,
};

const outPath = path.join(here, "sdk_vectors.json");
fs.writeFileSync(outPath, JSON.stringify(output, null, 2) + "\n");
console.log(
  `wrote ${path.relative(process.cwd(), outPath) || outPath}: ` +
    Object.entries(output)
      .filter(([, v]) => Array.isArray(v) && v.length && typeof v[0] === "object")
      .map(([k, v]) => `${k}=${v.length}`)
      .join(" "),
);
