//! Authentication: HMAC signatures, tokens, limits, secrets.

use super::*;

#[test]
fn hmac_test_vector() {
    let body = br#"{"image": "ghcr.io/acme/app", "tag": "1.2.3"}"#;
    let signature = sign(SECRET, body);
    for (source, header) in [
        (Source::GitHub, "x-hub-signature-256"),
        (Source::Generic, "x-tidewatch-signature-256"),
        (Source::Distribution, "x-tidewatch-signature-256"),
    ] {
        let h = headers(&[(header, &signature)]);
        let request = Request {
            headers: &h,
            query: None,
            body,
        };
        authenticate(source, &secret(), &request).unwrap();

        let mut changed = body.to_vec();
        changed[10] ^= 1;
        let request = Request {
            headers: &h,
            query: None,
            body: &changed,
        };
        let err = authenticate(source, &secret(), &request).unwrap_err();
        assert_eq!(err.status(), 401, "{source}");
        assert!(matches!(err, WebhookError::BadSignature { .. }), "{err}");
    }
    // Upper-case hex is fine; a truncated or non-hex digest is not.
    let h = headers(&[(
        "x-hub-signature-256",
        &signature.to_uppercase().replace("SHA256=", "sha256="),
    )]);
    authenticate(
        Source::GitHub,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap();
    for bad in [
        &signature[..signature.len() - 2],
        "sha256=zz",
        "sha1=00",
        "00",
    ] {
        let h = headers(&[("x-hub-signature-256", bad)]);
        let err = authenticate(
            Source::GitHub,
            &secret(),
            &Request {
                headers: &h,
                query: None,
                body,
            },
        )
        .unwrap_err();
        assert_eq!(err.status(), 401, "{bad}");
    }
}

#[test]
fn github_full_request() {
    let body = GITHUB_PACKAGE_PUBLISHED.as_bytes();
    let h = headers(&[
        ("x-github-event", "package"),
        ("content-type", "application/json"),
        ("x-hub-signature-256", &sign(SECRET, body)),
    ]);
    let found = handle(
        Source::GitHub,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].image.normalized(), "ghcr.io/acme/app");
    // Signed with another secret.
    let h = headers(&[("x-hub-signature-256", &sign("other", body))]);
    let err = handle(
        Source::GitHub,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
    // A bearer token is not a GitHub credential.
    let bearer = format!("Bearer {SECRET}");
    let h = headers(&[("authorization", &bearer)]);
    let err = handle(
        Source::GitHub,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, WebhookError::MissingCredentials { .. }),
        "{err}"
    );
}

#[test]
fn tokens_for_registries_without_hmac() {
    let bearer = format!("Bearer {SECRET}");
    let query = format!("foo=bar&token={SECRET}");
    for (source, body) in [
        (Source::DockerHub, DOCKER_HUB_PUSH),
        (Source::Harbor, HARBOR_PUSH),
        (Source::Quay, QUAY_PUSH),
    ] {
        let body = body.as_bytes();
        let none = headers(&[]);
        let with_bearer = headers(&[("authorization", &bearer)]);
        // Query token, bearer, or both.
        for (h, q) in [
            (&none, Some(query.as_str())),
            (&with_bearer, None),
            (&with_bearer, Some(query.as_str())),
        ] {
            let found = handle(
                source,
                &secret(),
                &Request {
                    headers: h,
                    query: q,
                    body,
                },
            )
            .unwrap();
            assert!(!found.is_empty(), "{source}");
        }
        // Missing, wrong, and one right next to one wrong.
        let wrong_bearer = headers(&[("authorization", "Bearer nope")]);
        for (h, q) in [
            (&none, None),
            (&none, Some("foo=bar")),
            (&none, Some("token=nope")),
            (&none, Some("token=%ZZ")),
            (&none, Some(&format!("token={SECRET}x")[..])),
            (&wrong_bearer, None),
            (&wrong_bearer, Some(query.as_str())),
            (&with_bearer, Some("token=nope")),
        ] {
            let err = handle(
                source,
                &secret(),
                &Request {
                    headers: h,
                    query: q,
                    body,
                },
            )
            .unwrap_err();
            assert_eq!(err.status(), 401, "{source} {q:?}: {err}");
        }
    }
    // Percent-encoded tokens are decoded.
    let odd = Authentication::Secret(Secret::new("a/b=c d"));
    let none = headers(&[]);
    let request = Request {
        headers: &none,
        query: Some("token=a%2Fb%3Dc%20d"),
        body: b"",
    };
    authenticate(Source::Quay, &odd, &request).unwrap();
}

#[test]
fn bearer_for_generic_and_distribution() {
    let body = br#"{"image": "ghcr.io/acme/app"}"#;
    let bearer = format!("Bearer {SECRET}");
    let h = headers(&[("authorization", &bearer)]);
    handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap();
    let h = headers(&[("Authorization", &format!("bearer  {SECRET}"))]);
    handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap();
    // The query token is not accepted for these sources.
    let none = headers(&[]);
    let q = format!("token={SECRET}");
    let err = handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &none,
            query: Some(&q),
            body,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, WebhookError::MissingCredentials { .. }),
        "{err}"
    );
    // A right bearer does not excuse a wrong signature.
    let h = headers(&[
        ("authorization", &bearer),
        ("x-tidewatch-signature-256", &sign("x", body)),
    ]);
    let err = handle(
        Source::Distribution,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
    // Other schemes are not credentials.
    let h = headers(&[("authorization", &format!("Basic {SECRET}"))]);
    let err = handle(
        Source::Distribution,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[test]
fn disabled_authentication_skips_checks() {
    let none = headers(&[]);
    let request = Request {
        headers: &none,
        query: None,
        body: QUAY_PUSH.as_bytes(),
    };
    assert_eq!(
        handle(Source::Quay, &Authentication::Disabled, &request)
            .unwrap()
            .len(),
        2
    );
    for source in Source::ALL {
        authenticate(source, &Authentication::Disabled, &request).unwrap();
        assert_eq!(
            authenticate(source, &secret(), &request)
                .unwrap_err()
                .status(),
            401
        );
    }
}

#[test]
fn empty_secret_is_refused() {
    let empty = Authentication::Secret(Secret::new(""));
    let h = headers(&[("authorization", "Bearer ")]);
    let request = Request {
        headers: &h,
        query: Some("token="),
        body: b"{}",
    };
    let err = authenticate(Source::Harbor, &empty, &request).unwrap_err();
    assert_eq!(err.status(), 500);
}

#[test]
fn body_over_limit_is_413_before_auth_and_parsing() {
    let body = vec![b'x'; MAX_BODY + 1];
    let none = headers(&[]);
    // Neither authenticated nor JSON: the size check comes first.
    let err = handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &none,
            query: None,
            body: &body,
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(matches!(err, WebhookError::BodyTooLarge { .. }));
    // Exactly the limit passes the size check (then fails auth).
    let err = handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &none,
            query: None,
            body: &body[..MAX_BODY],
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[test]
fn auth_comes_before_parsing() {
    let none = headers(&[]);
    let err = handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &none,
            query: None,
            body: b"not json",
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[test]
fn secret_never_appears_in_debug_or_errors() {
    let auth = secret();
    assert!(!format!("{auth:?}").contains(SECRET));
    let bearer = format!("Bearer {SECRET}");
    let h = headers(&[("authorization", &bearer)]);
    let q = format!("token={SECRET}");
    let request = Request {
        headers: &h,
        query: Some(&q),
        body: b"{}",
    };
    assert!(!format!("{request:?}").contains(SECRET));

    let mut errors = Vec::new();
    let wrong = Authentication::Secret(Secret::new("different-secret"));
    for source in Source::ALL {
        // Requests that carry the secret but fail for another reason.
        let wrong_auth = authenticate(source, &wrong, &request).unwrap_err();
        errors.push(wrong_auth);
        let sig = headers(&[
            ("x-hub-signature-256", SECRET),
            ("x-tidewatch-signature-256", SECRET),
        ]);
        if let Err(e) = authenticate(
            source,
            &auth,
            &Request {
                headers: &sig,
                query: None,
                body: b"{}",
            },
        ) {
            errors.push(e);
        }
        let bad_token = format!("token={SECRET}x");
        let none = headers(&[]);
        if let Err(e) = authenticate(
            source,
            &auth,
            &Request {
                headers: &none,
                query: Some(&bad_token),
                body: b"{}",
            },
        ) {
            errors.push(e);
        }
    }
    assert!(errors.len() > 12);
    for err in errors {
        assert_eq!(err.status(), 401);
        assert!(!err.to_string().contains(SECRET), "{err}");
        assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
    }
}
