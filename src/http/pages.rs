//! HTML pages (errors, logout confirmation). Every piece of text passes through [`escape`]:
//! pages are built from typed parts, never from raw strings.

use crate::http::Response;

pub enum Action<'a> {
    Link {
        href: &'a str,
        label: &'a str,
    },
    /// A button posting an empty form to `action` (same origin).
    PostButton {
        action: &'a str,
        label: &'a str,
    },
    /// One GET form to `action` with these hidden fields and a button per choice, each
    /// sending `field=value`: a chooser that works without JavaScript.
    Choices {
        action: &'a str,
        hidden: &'a [(&'a str, &'a str)],
        field: &'a str,
        /// (value, label)
        choices: &'a [(&'a str, &'a str)],
    },
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// The pages' one stylesheet (also used by the kept-form pages).
pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem}p{line-height:1.5}a.button,button{display:inline-block;margin:.5rem .5rem 0 0;padding:.5rem 1rem;\
border:1px solid #444;border-radius:4px;background:#fff;color:#222;text-decoration:none;font:inherit;cursor:pointer}\
small{color:#666}";

/// A complete page with security headers; `status` is the HTTP status.
pub fn page(status: u16, title: &str, paragraphs: &[&str], actions: &[Action<'_>]) -> Response {
    let mut body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        escape(title),
        escape(title)
    );
    for p in paragraphs {
        body.push_str(&format!("<p>{}</p>", escape(p)));
    }
    for a in actions {
        match a {
            Action::Link { href, label } => body.push_str(&format!("<a class=\"button\" href=\"{}\">{}</a>", escape(href), escape(label))),
            Action::PostButton { action, label } => body.push_str(&format!(
                "<form method=\"post\" action=\"{}\" style=\"display:inline\"><button type=\"submit\">{}</button></form>",
                escape(action),
                escape(label)
            )),
            Action::Choices { action, hidden, field, choices } => {
                body.push_str(&format!("<form method=\"get\" action=\"{}\">", escape(action)));
                for (name, value) in hidden.iter() {
                    body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value)));
                }
                for (value, label) in choices.iter() {
                    body.push_str(&format!(
                        "<p><button type=\"submit\" name=\"{}\" value=\"{}\">{}</button></p>",
                        escape(field), escape(value), escape(label)
                    ));
                }
                body.push_str("</form>");
            }
        }
    }
    body.push_str("<p><small>portcullis</small></p></body></html>");
    Response::new(status)
        .with_body("text/html; charset=utf-8", body)
        .with_header("Cache-Control", "no-store")
        .with_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#x27;y&#x27;&lt;/script&gt;"
        );
        let r = page(
            400,
            "<b>",
            &["<img src=x onerror=alert(1)>"],
            &[Action::Link {
                href: "\"><script>",
                label: "go",
            }],
        );
        let body = r.body_text();
        assert!(!body.contains("<img") && !body.contains("<script>") && !body.contains("<b>"));
        assert_eq!(r.status, 400);
        let chooser = page(
            200,
            "Sign in",
            &[],
            &[Action::Choices {
                action: "/auth/login",
                hidden: &[("return_to", "/\"><x")],
                field: "provider",
                choices: &[("a", "<A>"), ("b", "B")],
            }],
        )
        .body_text();
        assert!(chooser
            .contains(r#"<button type="submit" name="provider" value="a">&lt;A&gt;</button>"#));
        assert!(chooser.contains(r#"value="/&quot;&gt;&lt;x""#));
        assert!(!chooser.contains("<script"));
        assert!(r
            .headers
            .get("Content-Security-Policy")
            .unwrap()
            .contains("default-src 'none'"));
    }
}
