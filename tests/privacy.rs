//! Privacy before upload and duplicate awareness, end to end: the real `dropkey` binary
//! uploading camera files to the embedded sandbox, with what the sandbox stored (downloaded
//! from its delivery URL) and its ledger as the witnesses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::path::{Path, PathBuf};

use common::rig::Rig;
use serde_json::Value;

const KEY: &str = "private_privacy_test_key";
const COPYRIGHT: &[u8] = b"(c) Ada Lovelace 2026";
const SERIAL: &[u8] = b"SERIAL-0042-XYZ";
/// 51 degrees north: the GPS latitude's first rational, as stored (big-endian).
const LATITUDE: &[u8] = &[0, 0, 0, 51, 0, 0, 0, 1, 0, 0, 0, 30];

/// An Exif block (big-endian TIFF): IFD0 with Copyright and pointers to an Exif IFD holding
/// the body serial number and to a GPS IFD holding the latitude.
fn exif() -> Vec<u8> {
    let mut t = b"MM\0*".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value.to_be_bytes());
    };
    let ifd0 = 8u32;
    let exif_ifd = ifd0 + 2 + 3 * 12 + 4;
    let gps_ifd = exif_ifd + 2 + 12 + 4;
    let data = gps_ifd + 2 + 2 * 12 + 4;
    let copyright_at = data;
    let serial_at = copyright_at + COPYRIGHT.len() as u32 + 1;
    let lat_at = serial_at + SERIAL.len() as u32 + 1;
    t.extend_from_slice(&3u16.to_be_bytes());
    entry(&mut t, 0x8298, 2, COPYRIGHT.len() as u32 + 1, copyright_at);
    entry(&mut t, 0x8769, 4, 1, exif_ifd);
    entry(&mut t, 0x8825, 4, 1, gps_ifd);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&1u16.to_be_bytes());
    entry(&mut t, 0xA431, 2, SERIAL.len() as u32 + 1, serial_at);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&2u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_be_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, lat_at);
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len() as u32, data);
    t.extend_from_slice(COPYRIGHT);
    t.push(0);
    t.extend_from_slice(SERIAL);
    t.push(0);
    t.extend_from_slice(LATITUDE);
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    t
}

/// A photo as a phone writes it: a JPEG with the Exif block above after SOI.
fn camera_jpeg(seed: u8) -> Vec<u8> {
    let (w, h) = (96u16, 64u16);
    let pixels: Vec<u8> = (0..u32::from(w) * u32::from(h))
        .flat_map(|i| {
            let (x, y) = ((i % 96) as u8, (i / 96) as u8);
            [
                x.wrapping_mul(2).wrapping_add(seed),
                y.wrapping_mul(3),
                x ^ y,
            ]
        })
        .collect();
    let mut encoded = Vec::new();
    jpeg_encoder::Encoder::new(&mut encoded, 92)
        .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&exif());
    let mut out = encoded[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&encoded[2..]);
    out
}

fn decode(jpeg: &[u8]) -> Vec<u8> {
    zune_jpeg::JpegDecoder::new(zune_core::bytestream::ZCursor::new(jpeg))
        .decode()
        .unwrap()
}

fn has(data: &[u8], needle: &[u8]) -> bool {
    data.windows(needle.len()).any(|w| w == needle)
}

fn fetch(url: &str) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::get(url)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    })
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

impl Rig {
    fn new() -> Self {
        Rig::builder(KEY).start()
    }

    fn photo(&self, name: &str, seed: u8) -> (PathBuf, Vec<u8>) {
        let path = self.files().join(name);
        let data = camera_jpeg(seed);
        std::fs::write(&path, &data).unwrap();
        (path, data)
    }

    /// `dropkey upload sandbox ARGS...`: the one result line, which must be a success.
    fn upload_one(&self, args: &[&str]) -> Value {
        let mut all = vec!["upload", "sandbox"];
        all.extend_from_slice(args);
        let (code, lines, stderr) = self.run(&all);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["ok"], true, "{lines:?}");
        lines[0].clone()
    }
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn by_default_the_location_is_removed_and_the_pixels_copyright_and_original_stay() {
    let rig = Rig::new();
    let (path, original) = rig.photo("IMG_0001.jpg", 1);
    assert!(has(&original, LATITUDE));
    let line = rig.upload_one(&[path_arg(&path)]);
    assert_eq!(line["metadata"]["removed"], serde_json::json!(["location"]));

    let stored = fetch(line["url"].as_str().unwrap());
    assert!(!has(&stored, LATITUDE), "the latitude reached the CDN");
    assert!(has(&stored, COPYRIGHT) && has(&stored, SERIAL));
    assert_eq!(stored.len(), original.len(), "Exif is edited in place");
    assert_eq!(decode(&stored), decode(&original), "pixels changed");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        original,
        "the file on disk changed"
    );
    // The provider saw exactly the bytes the history describes.
    assert_eq!(rig.ledger()[0]["sha256"], sha256(&stored));
    let (_, history, _) = rig.run(&["history", "--limit", "1"]);
    assert_eq!(history[0]["url"], line["url"], "{history:?}");
    assert_eq!(history[0]["sha256"], sha256(&stored));
    assert_eq!(history[0]["size"], stored.len());
    // `verify` compares the provider's size with what was sent, not with the file on disk.
    let (code, problems, stderr) = rig.run(&["verify"]);
    assert_eq!(
        (code, problems.len()),
        (Some(0), 0),
        "{problems:?} {stderr}"
    );
}

#[test]
fn each_policy_keeps_and_removes_what_it_says() {
    let rig = Rig::new();
    let (path, original) = rig.photo("shot.jpg", 2);
    let keep = rig.upload_one(&["--metadata", "keep", path_arg(&path)]);
    assert!(keep.get("metadata").is_none(), "{keep}");
    assert_eq!(fetch(keep["url"].as_str().unwrap()), original);

    // Another seed each: the same bytes would be a duplicate.
    let (path, original) = rig.photo("private.jpg", 3);
    let private = rig.upload_one(&["--metadata", "strip-private", path_arg(&path)]);
    assert_eq!(
        private["metadata"]["removed"],
        serde_json::json!(["location", "serial-number"])
    );
    let stored = fetch(private["url"].as_str().unwrap());
    assert!(!has(&stored, LATITUDE) && !has(&stored, SERIAL) && has(&stored, COPYRIGHT));
    assert_eq!(decode(&stored), decode(&original));

    let (path, original) = rig.photo("all.jpg", 4);
    let all = rig.upload_one(&["--metadata", "strip-all", path_arg(&path)]);
    assert_eq!(all["metadata"]["removed"], serde_json::json!(["exif"]));
    let stored = fetch(all["url"].as_str().unwrap());
    assert!(!has(&stored, b"Exif\0\0") && !has(&stored, COPYRIGHT));
    assert_eq!(decode(&stored), decode(&original));

    let (code, _, stderr) = rig.run(&["upload", "sandbox", "--metadata", "strip", path_arg(&path)]);
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn a_profile_or_a_watch_sets_the_policy_in_the_config() {
    let rig = Rig::builder(KEY)
        .config(|sandbox, _| {
            format!(
                "[profiles.raw]\nprovider = \"imagekit\"\npublic_key = \"public_sandbox\"\nurl_endpoint = \"{base}{path}\"\nupload_url = \"{base}/api/v2/files/upload\"\napi_url = \"{base}\"\nmetadata = \"keep\"\n",
                base = sandbox.base_url(),
                path = dropkey_sandbox::IMAGEKIT_URL_PATH,
            )
        })
        .secrets_for(&["raw"])
        .start();
    let (path, original) = rig.photo("raw.jpg", 5);
    let (code, lines, stderr) = rig.run(&["upload", "raw", path_arg(&path)]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(fetch(lines[0]["url"].as_str().unwrap()), original);

    std::fs::write(rig.config_path(), "[profiles.bad]\nprovider = \"imagekit\"\npublic_key = \"p\"\nurl_endpoint = \"https://ik.imagekit.io/x\"\nmetadata = \"strip-gps\"\n").unwrap();
    let (code, _, stderr) = rig.run(&["profile", "list"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("profiles.bad.metadata") && stderr.contains("strip-location"),
        "{stderr}"
    );
}

#[test]
fn the_same_file_again_is_not_uploaded_twice_and_points_to_the_first_upload() {
    let rig = Rig::new();
    let (path, _) = rig.photo("again.jpg", 6);
    let first = rig.upload_one(&[path_arg(&path)]);
    assert!(first.get("duplicate_of").is_none());
    // The same content under another name, to the same folder.
    let copy = rig.files().join("again (copy).jpg");
    std::fs::copy(&path, &copy).unwrap();
    let second = rig.upload_one(&[path_arg(&copy)]);
    assert_eq!(second["url"], first["url"]);
    assert_eq!(second["id"], first["id"]);
    let earlier = &second["duplicate_of"];
    assert!(earlier["job"].as_i64().unwrap() > 0 && earlier["uploaded_at"].as_i64().unwrap() > 0);
    assert_eq!(rig.ledger().len(), 1, "the provider got the file once");

    // Another folder (or any other parameter) is another upload.
    let tagged = rig.upload_one(&["--tag", "second", path_arg(&copy)]);
    assert!(tagged.get("duplicate_of").is_none());
    let elsewhere = rig.upload_one(&["--folder", "/elsewhere", path_arg(&copy)]);
    assert!(elsewhere.get("duplicate_of").is_none());
    // Asked for, it is uploaded again.
    let forced = rig.upload_one(&["--on-duplicate", "upload", path_arg(&copy)]);
    assert!(forced.get("duplicate_of").is_none());
    assert_ne!(forced["id"], first["id"]);
    assert_eq!(rig.ledger().len(), 4);
}

#[test]
fn a_deleted_upload_is_not_a_duplicate() {
    let rig = Rig::new();
    let (path, _) = rig.photo("gone.jpg", 7);
    let first = rig.upload_one(&[path_arg(&path)]);
    // Deleted through Dropkey: its history entry goes.
    let (code, _, stderr) = rig.run(&["delete", "sandbox", first["id"].as_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let second = rig.upload_one(&[path_arg(&path)]);
    assert!(second.get("duplicate_of").is_none(), "{second}");
    assert_ne!(second["id"], first["id"]);

    // Deleted at the provider behind Dropkey's back: the provider is asked before skipping.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!(
        "{}/v1/files/{}",
        rig.sandbox().base_url(),
        second["id"].as_str().unwrap()
    );
    let status = rt.block_on(async {
        reqwest::Client::new()
            .delete(url)
            .basic_auth(KEY, Some(""))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 204);
    let third = rig.upload_one(&[path_arg(&path)]);
    assert!(third.get("duplicate_of").is_none(), "{third}");
    assert_eq!(rig.ledger().len(), 3);
}

/// Runs `engine` until `id` ended, on its events; its record.
fn wait_for(
    rig: &Rig,
    engine: &dropkey_core::engine::Engine,
    id: dropkey_core::engine::JobId,
) -> dropkey_core::engine::store::JobRecord {
    rig.runtime.block_on(async {
        let mut events = engine.subscribe();
        loop {
            let record = engine.job(id).unwrap();
            if record.state.is_terminal() {
                return record;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), events.recv()).await;
        }
    })
}

#[test]
fn upload_anyway_sends_a_skipped_file_once_more_as_it_was_queued() {
    let rig = Rig::new();
    std::env::set_var("DROPKEY_SECRET_SANDBOX", KEY);
    let (path, _) = rig.photo("twice.jpg", 8);
    let (engine, config) = rig.start_engine(&rig.data_dir(), |_| {});
    let profile = config.profile("sandbox").unwrap().clone();
    let queue = |path: &Path| {
        let mut job = engine
            .prepare(
                &profile,
                path,
                &Default::default(),
                dropkey_core::engine::JobSource::App,
            )
            .unwrap();
        job.params.insert("tags".into(), "shoot".into());
        engine.enqueue(&[job]).unwrap()[0]
    };
    let first = wait_for(&rig, &engine, queue(&path));
    let skipped = wait_for(&rig, &engine, queue(&path));
    let earlier = skipped.sent.as_ref().unwrap().duplicate_of.unwrap();
    assert_eq!(earlier.job, first.id);
    assert_eq!(skipped.url, first.url);
    assert_eq!(rig.ledger().len(), 1);

    // Only a skipped job can be uploaded anyway.
    assert!(engine.upload_anyway(first.id).is_err());
    let again = wait_for(&rig, &engine, engine.upload_anyway(skipped.id).unwrap());
    assert_eq!(again.state, dropkey_core::engine::JobState::Done);
    assert!(again.sent.as_ref().unwrap().duplicate_of.is_none());
    assert_ne!(again.remote_id, first.remote_id);
    assert_eq!(again.params, skipped.params, "the same tags and folder");
    assert_eq!(rig.ledger().len(), 2);
    assert_eq!(rig.ledger()[1]["tags"], serde_json::json!(["shoot"]));
}

#[test]
fn max_dimension_scales_large_images_down_and_keeps_the_metadata_the_policy_keeps() {
    let rig = Rig::new();
    // The camera JPEG is 96×64: a limit of 48 halves it.
    let (path, original) = rig.photo("big.jpg", 9);
    let line = rig.upload_one(&["--max-dimension", "48", "--quality", "90", path_arg(&path)]);
    let report = &line["metadata"];
    assert_eq!(
        report["resized"],
        serde_json::json!({"from": [96, 64], "to": [48, 32]})
    );
    assert_eq!(report["removed"], serde_json::json!(["location"]));
    let stored = fetch(line["url"].as_str().unwrap());
    let mut decoder = zune_jpeg::JpegDecoder::new(zune_core::bytestream::ZCursor::new(&stored[..]));
    decoder.decode_headers().unwrap();
    assert_eq!(decoder.dimensions(), Some((48, 32)));
    assert!(!has(&stored, LATITUDE) && has(&stored, COPYRIGHT) && has(&stored, SERIAL));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        original,
        "the file on disk changed"
    );
    assert_eq!(rig.ledger()[0]["sha256"], sha256(&stored));
    let (code, problems, stderr) = rig.run(&["verify"]);
    assert_eq!(
        (code, problems.len()),
        (Some(0), 0),
        "{problems:?} {stderr}"
    );
    // Nothing is left behind in the data directory.
    let resized = rig.data_dir().join("resized");
    assert!(!resized.exists() || std::fs::read_dir(&resized).unwrap().next().is_none());

    // Within the limit: sent as usual, not re-encoded.
    let (small, _) = rig.photo("small.jpg", 10);
    let line = rig.upload_one(&["--max-dimension", "500", path_arg(&small)]);
    assert!(line["metadata"].get("resized").is_none(), "{line}");
    let (code, _, stderr) = rig.run(&["upload", "sandbox", "--quality", "80", path_arg(&small)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--max-dimension"), "{stderr}");
}
