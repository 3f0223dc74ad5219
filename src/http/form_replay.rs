//! A form kept through sign-in: a browser form posted without a live session is read here
//! (`application/x-www-form-urlencoded` or `multipart/form-data`), handed back to the browser
//! in a page that keeps it in the tab's `sessionStorage` and goes to sign in, and after sign-in
//! a second page posts it again, once, to the same path. Nothing is stored on the server or in
//! a cookie. Both pages run one inline script allowed by a per-response CSP nonce.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::http::pages::{escape, STYLE};
use crate::http::Response;

/// The key the form is kept under in `sessionStorage`.
const STORAGE_KEY: &str = "portcullis.form";
/// A kept form is sent again only within this many milliseconds of being kept.
const KEEP_MS: u64 = 600_000;
const MAX_FIELDS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    File {
        filename: String,
        content_type: String,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    multipart: bool,
    pub fields: Vec<(String, FieldValue)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// Not one of the two form encodings (or a multipart one without a boundary).
    NotAForm,
    /// Bytes that are not what the encoding promises (no closing boundary, invalid UTF-8...).
    Malformed,
    TooManyFields,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotAForm => "not a form encoding",
            Self::Malformed => "the form body is malformed or not UTF-8",
            Self::TooManyFields => "the form has too many fields",
        })
    }
}

/// Whether `content_type` is one of the encodings a browser form posts.
pub fn is_form_type(content_type: &str) -> bool {
    let essence = media_type(content_type);
    essence == "application/x-www-form-urlencoded" || essence == "multipart/form-data"
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

impl Form {
    /// Reads a form body as the browser encoded it.
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Self, FormError> {
        let form = match media_type(content_type).as_str() {
            "application/x-www-form-urlencoded" => Self {
                multipart: false,
                fields: urlencoded(body)?,
            },
            "multipart/form-data" => {
                let boundary = param(content_type, "boundary").ok_or(FormError::NotAForm)?;
                Self {
                    multipart: true,
                    fields: multipart(body, &boundary)?,
                }
            }
            _ => return Err(FormError::NotAForm),
        };
        if form.fields.len() > MAX_FIELDS {
            return Err(FormError::TooManyFields);
        }
        Ok(form)
    }

    /// The form as the browser keeps it: `{v, id, path, enctype, fields: [[name, value]...]}`, a
    /// file as `{name, type, data}` (base64). `id` is what the sign-in carries back: only that
    /// sign-in's page sends it again.
    fn to_json(&self, path: &str, id: &str) -> Value {
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|(name, value)| match value {
                FieldValue::Text(t) => json!([name, t]),
                FieldValue::File {
                    filename,
                    content_type,
                    bytes,
                } => json!([name, {"name": filename, "type": content_type, "data": STANDARD.encode(bytes)}]),
            })
            .collect();
        let enctype = if self.multipart {
            "multipart/form-data"
        } else {
            "application/x-www-form-urlencoded"
        };
        json!({ "v": 1, "id": id, "path": path, "enctype": enctype, "fields": fields })
    }
}

/// `a=1&b=x+y%21`: `+` is a space; every name and value must decode to UTF-8.
fn urlencoded(body: &[u8]) -> Result<Vec<(String, FieldValue)>, FormError> {
    let decode = |s: &[u8]| -> Result<String, FormError> {
        let plus: Vec<u8> = s
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&plus)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| FormError::Malformed)
    };
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |&b| b == b'=');
            let name = decode(it.next().unwrap_or_default())?;
            let value = decode(it.next().unwrap_or_default())?;
            Ok((name, FieldValue::Text(value)))
        })
        .collect()
}

/// A parameter of a header value: `boundary=x` or `name="x"`, read left to right so that a
/// `;` or `=` inside quotes belongs to the value (browsers percent-encode `"`, CR and LF in
/// quoted names and filenames, so a quoted value ends at the next quote).
fn param(header: &str, name: &str) -> Option<String> {
    let mut rest = header.split_once(';')?.1;
    loop {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(';').trim();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                let tail = &quoted[end + 1..];
                (&quoted[..end], tail.split_once(';').map_or("", |(_, t)| t))
            }
            None => match after.split_once(';') {
                Some((v, t)) => (v.trim(), t),
                None => (after.trim(), ""),
            },
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value.to_owned());
        }
        if next.is_empty() {
            return None;
        }
        rest = next;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// RFC 7578: parts between `--boundary` lines, each with its headers; the body ends at
/// `--boundary--`.
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<(String, FieldValue)>, FormError> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err(FormError::NotAForm);
    }
    let delimiter = format!("--{boundary}");
    let start = find(body, delimiter.as_bytes()).ok_or(FormError::Malformed)?;
    let mut rest = &body[start + delimiter.len()..];
    let next_delimiter = format!("\r\n--{boundary}");
    let mut fields = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(fields);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or(FormError::Malformed)?;
        let end = find(rest, next_delimiter.as_bytes()).ok_or(FormError::Malformed)?;
        let part = &rest[..end];
        rest = &rest[end + next_delimiter.len()..];
        let split = find(part, b"\r\n\r\n").ok_or(FormError::Malformed)?;
        let headers = std::str::from_utf8(&part[..split]).map_err(|_| FormError::Malformed)?;
        let content = &part[split + 4..];
        let mut disposition = None;
        let mut content_type = None;
        for line in headers.split("\r\n") {
            let (k, v) = line.split_once(':').ok_or(FormError::Malformed)?;
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                disposition = Some(v.trim());
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim());
            }
        }
        let disposition = disposition.ok_or(FormError::Malformed)?;
        if !media_type(disposition).eq("form-data") {
            return Err(FormError::Malformed);
        }
        let name = param(disposition, "name").ok_or(FormError::Malformed)?;
        let value = match param(disposition, "filename") {
            Some(filename) => FieldValue::File {
                filename,
                content_type: content_type
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
                bytes: content.to_vec(),
            },
            None => FieldValue::Text(
                String::from_utf8(content.to_vec()).map_err(|_| FormError::Malformed)?,
            ),
        };
        fields.push((name, value));
        if fields.len() > MAX_FIELDS {
            return Err(FormError::TooManyFields);
        }
    }
}

/// JSON safe inside `<script type="application/json">`: no `<`, `>` or `&` (so no `</script>`),
/// nor the two line terminators JavaScript once refused.
fn script_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The headers of both pages: the script runs only with this response's nonce; forms may only
/// go to this origin; nothing is cached.
fn scripted_page(status: u16, nonce: &str, title: &str, body: &str, forms: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{title}</title><style nonce=\"{nonce}\">{STYLE}</style></head><body>{body}</body></html>"
    );
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; {forms}base-uri 'none'; frame-ancestors 'none'"
    );
    Response::new(status)
        .with_body("text/html; charset=utf-8", html)
        .with_header("Cache-Control", "no-store")
        .with_header("Content-Security-Policy", csp)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
}

/// The answer to a form posted without a live session: the form goes into this tab's
/// `sessionStorage`, then the browser goes to `login_href`. Without storage (or script), the
/// page says so and what to do. `path` is where the form was posted (path and query); `id`
/// names this kept form, and `login_href` carries it (`resume=ID`).
pub fn keep_page(form: &Form, path: &str, id: &str, login_href: &str, nonce: &str) -> Response {
    let data = script_json(&form.to_json(path, id));
    let body = format!(
        "<h1>Sign in to send your form</h1>\
<p id=\"kept\">Your session has ended. What you typed is kept in this browser tab while you sign in, then sent once.</p>\
<p id=\"lost\" hidden>This browser does not let the site keep the form while you sign in (storage is off or full), so it cannot be sent for you. Go back, copy what you typed, then sign in.</p>\
<noscript><p>JavaScript is off, so the form cannot be kept. Go back, copy what you typed, then sign in.</p></noscript>\
<p><a class=\"button\" id=\"login\" href=\"{href}\">Sign in</a></p>\
<script type=\"application/json\" id=\"form\">{data}</script>\
<script nonce=\"{nonce}\">(function(){{var k='{STORAGE_KEY}';\
var f=JSON.parse(document.getElementById('form').textContent);f.saved=Date.now();var s=JSON.stringify(f);\
try{{sessionStorage.setItem(k,s);if(sessionStorage.getItem(k)!==s)throw new Error('not kept');}}\
catch(e){{document.getElementById('kept').hidden=true;document.getElementById('lost').hidden=false;return;}}\
location.replace(document.getElementById('login').href);}})();</script>",
        href = escape(login_href),
    );
    scripted_page(
        401,
        nonce,
        "Sign in to send your form",
        &body,
        "form-action 'none'; ",
    )
}

/// After sign-in: posts the form kept for `path` under `id` (and only it, only there, only once,
/// only within ten minutes), else goes to `path`. No `form-action`: the origin's answer to the
/// post may redirect anywhere, as it would have without the sign-in.
pub fn resume_page(path: &str, id: &str, nonce: &str) -> Response {
    let body = format!(
        "<h1>Signed in</h1><p>Sending your form again&hellip; If nothing happens, <a id=\"to\" href=\"{href}\" data-id=\"{id}\">continue</a>.</p>\
<script nonce=\"{nonce}\">(function(){{var k='{STORAGE_KEY}';var to=document.getElementById('to').getAttribute('href');var f=null;\
try{{f=JSON.parse(sessionStorage.getItem(k));sessionStorage.removeItem(k);}}catch(e){{f=null;}}\
var age=f&&typeof f.saved==='number'?Date.now()-f.saved:-1;\
var ok=f&&f.v===1&&f.id===document.getElementById('to').getAttribute('data-id')&&f.path===to&&age>=0&&age<{KEEP_MS}&&Array.isArray(f.fields)\
&&(f.enctype==='application/x-www-form-urlencoded'||f.enctype==='multipart/form-data');\
if(!ok){{location.replace(to);return;}}\
var form=document.createElement('form');form.method='post';form.action=to;form.enctype=f.enctype;form.acceptCharset='UTF-8';\
try{{f.fields.forEach(function(p){{var i=document.createElement('input');i.name=String(p[0]);\
if(typeof p[1]==='string'){{i.type='hidden';i.value=p[1];}}else{{i.type='file';\
if(p[1].name||p[1].data){{var b=atob(p[1].data),u=new Uint8Array(b.length);for(var j=0;j<b.length;j++)u[j]=b.charCodeAt(j);\
var d=new DataTransfer();d.items.add(new File([u],String(p[1].name),{{type:String(p[1].type)}}));i.files=d.files;}}}}\
form.appendChild(i);}});}}catch(e){{location.replace(to);return;}}\
document.body.appendChild(form);history.replaceState(null,'',to);form.submit();}})();</script>",
        href = escape(path),
        id = escape(id),
    );
    scripted_page(200, nonce, "Signed in", &body, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MULTIPART: &str = "multipart/form-data; boundary=----WebKitFormBoundaryAbC";

    fn text(v: &str) -> FieldValue {
        FieldValue::Text(v.to_owned())
    }

    #[test]
    fn urlencoded_forms_decode_like_browsers_encode() {
        let f = Form::parse(
            "application/x-www-form-urlencoded; charset=UTF-8",
            b"name=Ada+Lovelace&note=line1%0D%0Aline2&empty=&flag&caf%C3%A9=%E2%9C%93",
        )
        .unwrap();
        assert_eq!(
            f.fields,
            [
                ("name".into(), text("Ada Lovelace")),
                ("note".into(), text("line1\r\nline2")),
                ("empty".into(), text("")),
                ("flag".into(), text("")),
                ("café".into(), text("✓")),
            ]
        );
        assert_eq!(
            Form::parse("application/x-www-form-urlencoded", b"a=%FF").unwrap_err(),
            FormError::Malformed
        );
        assert_eq!(
            Form::parse("application/json", b"{}").unwrap_err(),
            FormError::NotAForm
        );
        assert!(is_form_type("Multipart/Form-Data; boundary=x"));
        assert!(!is_form_type("text/plain"));
    }

    #[test]
    fn multipart_forms_keep_text_and_files() {
        let body = "------WebKitFormBoundaryAbC\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\nworld\r\n\
------WebKitFormBoundaryAbC\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a%22b.txt\"\r\nContent-Type: text/plain\r\n\r\n\x00\x01bin\r\n\
------WebKitFormBoundaryAbC\r\nContent-Disposition: form-data; name=\"none\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n\
------WebKitFormBoundaryAbC--\r\n";
        let f = Form::parse(MULTIPART, body.as_bytes()).unwrap();
        assert_eq!(f.fields[0], ("title".into(), text("Hello\r\nworld")));
        assert_eq!(
            f.fields[1],
            (
                "doc".into(),
                FieldValue::File {
                    filename: "a%22b.txt".into(),
                    content_type: "text/plain".into(),
                    bytes: b"\x00\x01bin".to_vec()
                }
            )
        );
        assert!(
            matches!(&f.fields[2].1, FieldValue::File { filename, bytes, .. } if filename.is_empty() && bytes.is_empty())
        );
        // `;` and `=` inside quotes belong to the name: a text field stays a text field.
        let tricky =
            "--b\r\nContent-Disposition: form-data; name=\"q; filename=%22x%22\"\r\n\r\nv\r\n\
--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"my;report=1.pdf\"\r\n\r\nz\r\n--b--";
        let t = Form::parse("multipart/form-data; boundary=\"b\"", tricky.as_bytes()).unwrap();
        assert_eq!(t.fields[0], ("q; filename=%22x%22".into(), text("v")));
        assert!(
            matches!(&t.fields[1].1, FieldValue::File { filename, .. } if filename == "my;report=1.pdf")
        );
        let json = f.to_json("/upload?x=1", "k1");
        assert_eq!(json["enctype"], "multipart/form-data");
        assert_eq!(
            json["fields"][1][1]["data"],
            STANDARD.encode(b"\x00\x01bin")
        );
        // No closing boundary, a part without headers, no boundary parameter: refused.
        for (ct, bad) in [
            (MULTIPART, "------WebKitFormBoundaryAbC\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"),
            (MULTIPART, "------WebKitFormBoundaryAbC\r\n\r\nx\r\n------WebKitFormBoundaryAbC--"),
            (MULTIPART, "nothing"),
            ("multipart/form-data", "--x--"),
        ] {
            assert!(Form::parse(ct, bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_kept_form_cannot_break_out_of_its_script() {
        let f = Form::parse(
            "application/x-www-form-urlencoded",
            b"x=%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&y=%E2%80%A8",
        )
        .unwrap();
        let page = keep_page(
            &f,
            "/c?a=\"><b>",
            "k1",
            "/auth/login?return_to=%2Fc",
            "n0nce",
        );
        let html = page.body_text();
        assert_eq!(html.matches("</script>").count(), 2, "{html}");
        assert!(!html.contains("<b>") && !html.contains('\u{2028}'));
        assert!(html.contains("<script nonce=\"n0nce\">"));
        let csp = page.headers.get("Content-Security-Policy").unwrap();
        assert!(csp.contains("script-src 'nonce-n0nce'") && csp.contains("form-action 'none'"));
        assert_eq!(page.headers.get("Cache-Control"), Some("no-store"));
        // The data block, read back as the script reads it, is the form.
        let start = html.find("id=\"form\">").unwrap() + "id=\"form\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        let back: Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(back["fields"][0][1], "</script><script>alert(1)</script>");
        assert_eq!(back["path"], "/c?a=\"><b>");
        assert_eq!(back["id"], "k1");
        let resume = resume_page("/c?a=\"><b>", "k1", "n2");
        assert!(resume
            .body_text()
            .contains("href=\"/c?a=&quot;&gt;&lt;b&gt;\" data-id=\"k1\""));
        let csp = resume.headers.get("Content-Security-Policy").unwrap();
        assert!(!csp.contains("form-action"), "{csp}");
    }

    proptest! {
        #[test]
        fn fuzz_form_parsing_never_panics(ct in prop_oneof![
            Just("application/x-www-form-urlencoded".to_owned()),
            Just(MULTIPART.to_owned()),
            "[ -~]{0,60}",
        ], body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Form::parse(&ct, &body);
        }

        #[test]
        fn fuzz_multipart_round_trips(fields in proptest::collection::vec(("[a-z]{1,8}", "[^\r]{0,20}"), 0..6)) {
            let mut body = String::new();
            for (k, v) in &fields {
                body.push_str(&format!("------WebKitFormBoundaryAbC\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
            }
            body.push_str("------WebKitFormBoundaryAbC--\r\n");
            let f = Form::parse(MULTIPART, body.as_bytes()).unwrap();
            let want: Vec<(String, FieldValue)> = fields.iter().map(|(k, v)| (k.clone(), text(v))).collect();
            prop_assert_eq!(f.fields, want);
        }
    }
}
