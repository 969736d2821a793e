//! Listings say when they are cut. A page is read one item longer than
//! asked; when that item exists the answer carries `X-Next-Offset` (and,
//! for GET listings, `Link: <…>; rel="next"`), and our own listings a
//! `next_offset` field, so a script asking for "all" (`limit: -1`, at most
//! 1,000 at once) knows to ask again.

use crate::ops::Page;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

/// The page to read: one item more than asked.
pub fn probe(page: Page) -> Page {
    Page {
        limit: page.limit.saturating_add(1),
        ..page
    }
}

/// Cuts what was read to the page asked; the offset of the next page when
/// more follow.
pub fn cut<T>(page: Page, items: &mut Vec<T>) -> Option<u32> {
    let limit = page.limit as usize;
    (items.len() > limit).then(|| {
        items.truncate(limit);
        page.offset.saturating_add(page.limit)
    })
}

/// `200 OK` with the next page's headers when there is one.
pub fn ok(req: &HttpRequest, next_offset: Option<u32>) -> HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    if let Some(next) = next_offset {
        response.insert_header(("X-Next-Offset", next.to_string()));
        if req.method() == actix_web::http::Method::GET {
            let mut query: Vec<(String, String)> =
                serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
            query.retain(|(k, _)| k != "offset");
            query.push(("offset".into(), next.to_string()));
            let query = serde_urlencoded::to_string(&query).unwrap_or_default();
            response.insert_header(("Link", format!("<{}?{query}>; rel=\"next\"", req.path())));
        }
    }
    response
}
