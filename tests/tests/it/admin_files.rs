//! The files of local landing pages and offers over the Admin API: a landing created from a
//! base64 ZIP, the file editor operations, the download, paths confined to the object's
//! directory, bad archives refused with nothing written, and the landing's page served through
//! a campaign link by the `local_file` action.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_tests::{Backend, TestDb, TestServer, client};

const ADMIN_KEY: &str = "test-admin-key-0123456789";

struct Admin {
    server: TestServer,
}

impl Admin {
    async fn start(db: &TestDb) -> Admin {
        let extra = format!("[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n");
        Admin {
            server: TestServer::start(db, &extra).await.unwrap(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, self.server.url(&format!("/admin_api/v1{path}")))
            .header("Api-Key", ADMIN_KEY)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), path, body).await;
        assert_eq!(status, 200, "{method} {path}: {value}");
        value
    }

    fn data_dir(&self) -> PathBuf {
        self.server.server.state.config.server.data_dir.clone()
    }

    fn landing_dir(&self, id: i64) -> PathBuf {
        self.data_dir()
            .join("uploads")
            .join("landings")
            .join(id.to_string())
    }
}

fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if name.ends_with('/') {
            writer.add_directory(*name, options).unwrap();
        } else {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
    }
    writer.finish().unwrap().into_inner()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(listing) = std::fs::read_dir(dir) else {
            return;
        };
        for item in listing.flatten() {
            let path = item.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

const LOGO: &[u8] = &[0x89, b'P', b'N', b'G', 0, 0xff, 0xfe, 1, 2, 3];

async fn landing_from_archive_to_campaign_link(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let admin = Admin::start(&db).await;
    let archive = zip_bytes(&[
        (
            "index.html",
            b"<h1>Local landing</h1><a href=\"{offer}\">go</a>",
        ),
        ("css/", b""),
        ("css/site.css", b"h1{color:red}"),
        ("img/logo.png", LOGO),
        ("__MACOSX/._index.html", b"junk"),
    ]);
    let landing = admin
        .ok(
            Method::POST,
            "/landing_pages",
            Some(json!({ "name": "Zipped", "archive": b64(&archive) })),
        )
        .await;
    let lid = id(&landing);
    assert_eq!(landing["landing_type"], "local", "{landing}");
    assert_eq!(landing["action_type"], "local_file");
    assert_eq!(landing["action_payload"], "index.html");
    assert!(
        landing.get("archive").is_none() || landing["archive"].is_null(),
        "the archive is not echoed"
    );
    assert_eq!(
        files_under(&admin.landing_dir(lid)),
        ["css/site.css", "img/logo.png", "index.html"],
        "macOS litter is left out"
    );

    // The tree.
    let tree = admin
        .ok(
            Method::GET,
            &format!("/landing_pages/{lid}/get_structure"),
            None,
        )
        .await;
    assert_eq!(tree["type"], "directory");
    let children = tree["children"].as_array().unwrap();
    let names: Vec<&str> = children
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["css", "img", "index.html"], "{tree}");
    assert_eq!(children[0]["type"], "directory");
    assert_eq!(
        children[0]["children"][0],
        json!({ "name": "site.css", "type": "file", "ext": "css", "path": "css/site.css", "children": [] })
    );
    assert_eq!(children[2]["ext"], "html");

    // Reading: text as is, binary as base64.
    let file = admin
        .ok(
            Method::GET,
            &format!("/landing_pages/{lid}/get_file?path=css/site.css"),
            None,
        )
        .await;
    assert_eq!(
        file,
        json!({ "path": "css/site.css", "data": "h1{color:red}", "encoding": "utf-8" })
    );
    let logo = admin
        .ok(
            Method::GET,
            &format!("/landing_pages/{lid}/get_file?path=img%2Flogo.png"),
            None,
        )
        .await;
    assert_eq!(logo["encoding"], "base64");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(logo["data"].as_str().unwrap())
            .unwrap(),
        LOGO
    );

    // Adding: JSON, form and raw bodies; an existing path is a conflict.
    let added = admin
        .ok(
            Method::POST,
            &format!("/landing_pages/{lid}/add_file?path=order/success.html"),
            Some(json!({ "data": "<p>thanks</p>" })),
        )
        .await;
    assert_eq!(added, json!({ "path": "order/success.html" }));
    let (status, body) = admin
        .call(
            Method::POST,
            &format!("/landing_pages/{lid}/add_file?path=order/success.html"),
            Some(json!({ "data": "x" })),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let form = admin
        .request(Method::POST, &format!("/landing_pages/{lid}/add_file"))
        .form(&[("path", "form.txt"), ("data", "a+b & c")]);
    assert_eq!(admin.send(form).await.0, 200);
    let raw = admin
        .request(
            Method::POST,
            &format!("/landing_pages/{lid}/add_file?path=img/raw.bin"),
        )
        .header("Content-Type", "application/octet-stream")
        .body(LOGO.to_vec());
    assert_eq!(admin.send(raw).await.0, 200);
    assert_eq!(
        std::fs::read(admin.landing_dir(lid).join("img/raw.bin")).unwrap(),
        LOGO
    );
    assert_eq!(
        std::fs::read_to_string(admin.landing_dir(lid).join("form.txt")).unwrap(),
        "a+b & c"
    );
    let multipart = admin
        .request(
            Method::POST,
            &format!("/landing_pages/{lid}/add_file?path=multi.txt"),
        )
        .header("Content-Type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\nhello\r\n--x--\r\n");
    assert_eq!(
        admin.send(multipart).await.0,
        400,
        "multipart is refused, not saved empty"
    );
    assert!(!admin.landing_dir(lid).join("multi.txt").exists());
    let empty = admin
        .ok(
            Method::POST,
            &format!("/landing_pages/{lid}/add_file?path=empty.js"),
            None,
        )
        .await;
    assert_eq!(empty["path"], "empty.js");

    // Updating through the query (Keitaro's documented form); data is required.
    admin
        .ok(
            Method::PUT,
            &format!(
                "/landing_pages/{lid}/update_file?path=css/site.css&data=h1%7Bcolor%3Ablue%7D"
            ),
            None,
        )
        .await;
    let file = admin
        .ok(
            Method::GET,
            &format!("/landing_pages/{lid}/get_file?path=css/site.css"),
            None,
        )
        .await;
    assert_eq!(file["data"], "h1{color:blue}");
    let (status, body) = admin
        .call(
            Method::PUT,
            &format!("/landing_pages/{lid}/update_file?path=css/site.css"),
            None,
        )
        .await;
    assert_eq!(status, 406, "{body}");
    assert!(body["data"].is_array(), "{body}");
    let (status, _) = admin
        .call(
            Method::PUT,
            &format!("/landing_pages/{lid}/update_file?path=css&data=x"),
            None,
        )
        .await;
    assert_eq!(status, 409, "a directory cannot be overwritten by a file");

    // Removing a file, then a directory.
    let removed = admin
        .ok(
            Method::DELETE,
            &format!("/landing_pages/{lid}/remove_file?path=form.txt"),
            None,
        )
        .await;
    assert_eq!(removed, json!({ "success": true }));
    let (status, _) = admin
        .call(
            Method::GET,
            &format!("/landing_pages/{lid}/get_file?path=form.txt"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = admin
        .call(
            Method::DELETE,
            &format!("/landing_pages/{lid}/remove_file?path=form.txt"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    admin
        .ok(
            Method::DELETE,
            &format!("/landing_pages/{lid}/remove_file?path=order"),
            None,
        )
        .await;
    assert!(!admin.landing_dir(lid).join("order").exists());

    // The download holds the current files.
    let response = admin
        .request(Method::GET, &format!("/landing_pages/{lid}/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = zip
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .filter(|n| !n.ends_with('/'))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "css/site.css",
            "empty.js",
            "img/logo.png",
            "img/raw.bin",
            "index.html"
        ]
    );
    let mut css = String::new();
    zip.by_name("css/site.css")
        .unwrap()
        .read_to_string(&mut css)
        .unwrap();
    assert_eq!(css, "h1{color:blue}");

    // A campaign whose stream sends visitors to the landing serves its page.
    let offer = admin
        .ok(
            Method::POST,
            "/offers",
            Some(json!({ "name": "O", "url": "https://offer.example/?s={subid}" })),
        )
        .await;
    let campaign = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "Files", "alias": "files-c" })),
        )
        .await;
    admin
        .ok(
            Method::POST,
            "/streams",
            Some(json!({
                "campaign_id": id(&campaign), "type": "regular", "name": "To the landing", "schema": "landings",
                "landings": [{ "landing_id": lid, "share": 100 }],
                "offers": [{ "offer_id": id(&offer), "share": 100 }],
            })),
        )
        .await;
    let response = client()
        .get(admin.server.url("/files-c"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.starts_with("<h1>Local landing</h1>"), "{page}");

    // A new archive replaces every file, and the link serves the new page at once.
    let second = zip_bytes(&[("site/index.html", b"<h1>Second</h1>"), ("site/a.css", b"")]);
    let updated = admin
        .ok(
            Method::PUT,
            &format!("/landing_pages/{lid}"),
            Some(json!({ "archive": b64(&second) })),
        )
        .await;
    assert_eq!(updated["action_payload"], "site/index.html", "{updated}");
    assert_eq!(
        files_under(&admin.landing_dir(lid)),
        ["site/a.css", "site/index.html"]
    );
    let page = client()
        .get(admin.server.url("/files-c"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page, "<h1>Second</h1>");
    // Nothing is left in the staging area.
    let staging = admin.data_dir().join("uploads").join(".staging");
    assert_eq!(files_under(&staging), Vec::<String>::new());
    assert_eq!(
        std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
        0
    );

    // A clone serves a copy of the files: changing the copy leaves the original alone.
    let clone = admin
        .ok(Method::PUT, &format!("/landing_pages/{lid}/clone"), None)
        .await;
    let cid = id(&clone);
    assert_eq!(clone["action_type"], "local_file");
    assert_eq!(
        files_under(&admin.landing_dir(cid)),
        ["site/a.css", "site/index.html"]
    );
    admin
        .ok(
            Method::PUT,
            &format!("/landing_pages/{cid}/update_file?path=site/index.html&data=copy"),
            None,
        )
        .await;
    assert_eq!(
        std::fs::read_to_string(admin.landing_dir(lid).join("site/index.html")).unwrap(),
        "<h1>Second</h1>"
    );

    // An explicit type and action win over the archive's defaults.
    let explicit = admin
        .ok(
            Method::POST,
            "/landing_pages",
            Some(
                json!({ "name": "Explicit", "landing_type": "action", "action_type": "show_text",
                         "action_payload": "hi", "archive": b64(&archive) }),
            ),
        )
        .await;
    assert_eq!(explicit["landing_type"], "action");
    assert_eq!(explicit["action_type"], "show_text");
    assert_eq!(explicit["action_payload"], "hi");
    assert!(admin.landing_dir(id(&explicit)).join("index.html").exists());

    // Offers have the same operations in their own directory.
    let local_offer = admin
        .ok(Method::POST, "/offers", Some(json!({ "name": "Local offer", "archive": b64(&zip_bytes(&[("index.html", b"offer page")])) })))
        .await;
    let oid = id(&local_offer);
    assert_eq!(local_offer["offer_type"], "local");
    admin
        .ok(
            Method::POST,
            &format!("/offers/{oid}/add_file?path=thanks.html"),
            Some(json!({ "data": "ok" })),
        )
        .await;
    let tree = admin
        .ok(Method::GET, &format!("/offers/{oid}/get_structure"), None)
        .await;
    let names: Vec<&str> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["index.html", "thanks.html"]);
    let offer_dir = admin
        .data_dir()
        .join("uploads")
        .join("offers")
        .join(oid.to_string());
    assert_eq!(files_under(&offer_dir), ["index.html", "thanks.html"]);

    // Objects that do not exist have no files.
    for (method, path) in [
        (Method::GET, "/landing_pages/9999/get_structure"),
        (Method::GET, "/landing_pages/9999/get_file?path=index.html"),
        (Method::POST, "/landing_pages/9999/add_file?path=index.html"),
        (Method::GET, "/offers/9999/download"),
        (Method::DELETE, "/offers/9999/remove_file?path=index.html"),
    ] {
        let (status, body) = admin.call(method.clone(), path, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    assert!(!admin.landing_dir(9999).exists());
    admin.server.stop().await;
}

#[tokio::test]
async fn landing_from_archive_to_campaign_link_sqlite() {
    landing_from_archive_to_campaign_link(Backend::Sqlite).await;
}

#[tokio::test]
async fn landing_from_archive_to_campaign_link_postgres() {
    landing_from_archive_to_campaign_link(Backend::Postgres).await;
}

async fn paths_stay_in_the_object_directory(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let admin = Admin::start(&db).await;
    let landing = admin
        .ok(
            Method::POST,
            "/landing_pages",
            Some(json!({ "name": "L", "archive": b64(&zip_bytes(&[("index.html", b"x")])) })),
        )
        .await;
    let lid = id(&landing);
    let before = files_under(&admin.data_dir());
    let attempts = [
        "../../../secrets.toml",
        "..%2F..%2F..%2Fsecrets.toml",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "a/../../x.html",
        "./index.html",
        "a%00b.html",
        "..%5C..%5Cx.html",
        "a//b.html",
        "",
    ];
    for path in attempts {
        for (method, route) in [
            (Method::GET, "get_file"),
            (Method::POST, "add_file"),
            (Method::PUT, "update_file"),
            (Method::DELETE, "remove_file"),
        ] {
            let url = format!("/landing_pages/{lid}/{route}?path={path}&data=pwned");
            let (status, body) = admin.call(method.clone(), &url, None).await;
            assert_eq!(status, 406, "{method} {url}: {body}");
            assert!(body["path"].is_array(), "{method} {url}: {body}");
        }
    }
    // A path in a JSON body is checked the same way.
    let (status, _) = admin
        .call(
            Method::POST,
            &format!("/landing_pages/{lid}/add_file"),
            Some(json!({ "path": "../x.html", "data": "x" })),
        )
        .await;
    assert_eq!(status, 406);
    let (status, _) = admin
        .call(Method::GET, &format!("/landing_pages/{lid}/get_file"), None)
        .await;
    assert_eq!(status, 406, "path is required");
    assert_eq!(
        files_under(&admin.data_dir()),
        before,
        "nothing was written or removed"
    );

    // A symbolic link placed by hand is never followed.
    let dir = admin.landing_dir(lid);
    let outside = admin.data_dir().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    for (method, route) in [
        (Method::GET, "get_file"),
        (Method::PUT, "update_file"),
        (Method::DELETE, "remove_file"),
    ] {
        let url = format!("/landing_pages/{lid}/{route}?path=link/secret.txt&data=pwned");
        let (status, body) = admin.call(method.clone(), &url, None).await;
        assert_eq!(status, 406, "{method} {url}: {body}");
    }
    let (status, _) = admin
        .call(
            Method::DELETE,
            &format!("/landing_pages/{lid}/remove_file?path=link"),
            None,
        )
        .await;
    assert_eq!(status, 406);
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );
    let tree = admin
        .ok(
            Method::GET,
            &format!("/landing_pages/{lid}/get_structure"),
            None,
        )
        .await;
    assert_eq!(
        tree["children"].as_array().unwrap().len(),
        1,
        "links are not listed: {tree}"
    );

    // A USER with read-only access to landings reads files and changes none.
    let user = admin
        .ok(
            Method::POST,
            "/users",
            Some(json!({
                "login": "reader", "type": "USER", "new_password": "correct horse",
                "new_password_confirmation": "correct horse",
                "access_data": { "landings_access_type": "read_only" },
            })),
        )
        .await;
    let key = user["api_key"].as_str().unwrap().to_string();
    let as_reader = |method: Method, path: String| {
        client()
            .request(method, admin.server.url(&format!("/admin_api/v1{path}")))
            .header("Api-Key", key.clone())
    };
    for route in ["get_structure", "get_file?path=index.html", "download"] {
        let path = format!("/landing_pages/{lid}/{route}");
        let status = as_reader(Method::GET, path.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{path}");
    }
    for (method, route) in [
        (Method::POST, "add_file?path=new.html"),
        (Method::PUT, "update_file?path=index.html&data=x"),
        (Method::DELETE, "remove_file?path=index.html"),
    ] {
        let path = format!("/landing_pages/{lid}/{route}");
        let status = as_reader(method.clone(), path.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 403, "{method} {path}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("index.html")).unwrap(),
        "x"
    );
    assert!(!dir.join("new.html").exists());
    admin.server.stop().await;
}

#[tokio::test]
async fn paths_stay_in_the_object_directory_sqlite() {
    paths_stay_in_the_object_directory(Backend::Sqlite).await;
}

#[tokio::test]
async fn paths_stay_in_the_object_directory_postgres() {
    paths_stay_in_the_object_directory(Backend::Postgres).await;
}

fn symlink_zip() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer.start_file("index.html", options).unwrap();
    writer.write_all(b"x").unwrap();
    writer.add_symlink("etc", "/etc", options).unwrap();
    writer.finish().unwrap().into_inner()
}

/// A ZIP whose one entry says it is 10 bytes but inflates to 80 MiB.
fn lying_bomb() -> Vec<u8> {
    let mut honest = zip_bytes(&[("bomb.bin", &vec![0u8; 80 * 1024 * 1024])]);
    let size = (80u32 * 1024 * 1024).to_le_bytes();
    // Patch the uncompressed size in the local header and the central directory.
    let mut patched = 0;
    for at in 0..honest.len() - 4 {
        if honest[at..at + 4] == size {
            honest[at..at + 4].copy_from_slice(&10u32.to_le_bytes());
            patched += 1;
        }
    }
    assert!(patched >= 2, "sizes found: {patched}");
    honest
}

/// A ZIP cut in half.
fn truncated_zip() -> Vec<u8> {
    let whole = zip_bytes(&[
        ("index.html", b"<h1>a page</h1>"),
        ("about.html", b"<h1>about</h1>"),
    ]);
    whole[..whole.len() / 2].to_vec()
}

/// A stored (uncompressed) entry whose content was changed after its checksum was taken.
fn damaged_zip() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file("index.html", options).unwrap();
    writer.write_all(b"<h1>the original page</h1>").unwrap();
    let mut bytes = writer.finish().unwrap().into_inner();
    let at = bytes.windows(8).position(|w| w == b"original").unwrap();
    bytes[at] = b'O';
    bytes
}

async fn bad_archives_write_nothing(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let admin = Admin::start(&db).await;
    let uploads = admin.data_dir().join("uploads");
    let bad: Vec<(&str, Value)> = vec![
        ("not base64", json!("%%% not base64 %%%")),
        ("not a zip", json!(b64(b"hello, this is not a zip file"))),
        ("a number", json!(12)),
        (
            "traversal",
            json!(b64(&zip_bytes(&[("../../evil.html", b"x")]))),
        ),
        (
            "absolute",
            json!(b64(&zip_bytes(&[("/tmp/evil.html", b"x")]))),
        ),
        ("symlink", json!(b64(&symlink_zip()))),
        ("empty", json!(b64(&zip_bytes(&[("dir/", b"")])))),
        (
            "bomb",
            json!(b64(&zip_bytes(&[(
                "bomb.bin",
                &vec![0u8; 70 * 1024 * 1024]
            )]))),
        ),
        ("lying bomb", json!(b64(&lying_bomb()))),
        ("truncated", json!(b64(&truncated_zip()))),
        ("damaged data", json!(b64(&damaged_zip()))),
    ];
    for (what, archive) in &bad {
        let (status, body) = admin
            .call(
                Method::POST,
                "/landing_pages",
                Some(json!({ "name": "Bad", "archive": archive })),
            )
            .await;
        assert_eq!(status, 406, "{what}: {body}");
        assert!(body["archive"].is_array(), "{what}: {body}");
    }
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM landings")
            .await
            .unwrap(),
        0,
        "no landing was created"
    );
    assert_eq!(
        files_under(&uploads),
        Vec::<String>::new(),
        "no file was written"
    );

    // A bad archive on update changes neither the row nor the files.
    let landing = admin
        .ok(
            Method::POST,
            "/landing_pages",
            Some(json!({ "name": "Good", "archive": b64(&zip_bytes(&[("index.html", b"good")])) })),
        )
        .await;
    let lid = id(&landing);
    for (what, archive) in &bad {
        let (status, body) = admin
            .call(
                Method::PUT,
                &format!("/landing_pages/{lid}"),
                Some(json!({ "name": "Renamed", "archive": archive })),
            )
            .await;
        assert_eq!(status, 406, "{what}: {body}");
    }
    let now = admin
        .ok(Method::GET, &format!("/landing_pages/{lid}"), None)
        .await;
    assert_eq!(now["name"], "Good");
    assert_eq!(files_under(&admin.landing_dir(lid)), ["index.html"]);
    assert_eq!(
        std::fs::read_to_string(admin.landing_dir(lid).join("index.html")).unwrap(),
        "good"
    );
    // The archive's message sits beside the other fields' messages.
    let (status, body) = admin
        .call(
            Method::POST,
            "/offers",
            Some(json!({ "archive": "%%%", "payout_type": "nope" })),
        )
        .await;
    assert_eq!(status, 406);
    for field in ["archive", "name", "payout_type"] {
        assert!(body[field].is_array(), "{field} missing from {body}");
    }
    admin.server.stop().await;
}

#[tokio::test]
async fn bad_archives_write_nothing_sqlite() {
    bad_archives_write_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn bad_archives_write_nothing_postgres() {
    bad_archives_write_nothing(Backend::Postgres).await;
}
