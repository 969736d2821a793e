use crate::client::{csr, error_code, p256, registration};
use crate::fixture::Server;

#[test]
fn twenty_concurrent_registrations_on_a_ten_use_token_admit_exactly_ten() {
    let server = Server::start();
    let token = server.token("Default", &["--max-uses", "10"]);
    let start = std::sync::Arc::new(std::sync::Barrier::new(20));
    let outcomes: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let server = &server;
                let token = &token;
                let start = start.clone();
                s.spawn(move || {
                    let body = registration(
                        &format!("c-{i}"),
                        &format!("CONC{i:02}"),
                        token,
                        &csr(&p256()),
                    );
                    let device = server.device();
                    start.wait();
                    let (status, answer) = device.post(&body);
                    (status, error_code(&answer).to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let ok = outcomes.iter().filter(|(s, _)| *s == 200).count();
    let exhausted = outcomes
        .iter()
        .filter(|(s, c)| *s == 401 && c == "token_exhausted")
        .count();
    assert_eq!((ok, exhausted), (10, 10), "{outcomes:?}");
    let db = server.db();
    let uses: i64 = db.one("SELECT uses FROM registration_tokens");
    let instances: i64 = db.one("SELECT COUNT(*) FROM product_instances");
    let certificates: i64 = db.one("SELECT COUNT(*) FROM certificates");
    assert_eq!((uses, instances, certificates), (10, 10, 10));
}
