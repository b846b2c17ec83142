//! Trying something again until it succeeds or a deadline passes.

use std::time::{Duration, Instant};

/// Call `attempt` until it gives `Some`, it fails, or `deadline` has passed;
/// `interval` apart. It is always called at least once, and the deadline is
/// looked at only after a try, so the last try can see what came just
/// before it. `Ok(None)`: the deadline passed.
pub fn poll_until<T, E>(
    deadline: Instant,
    interval: Duration,
    mut attempt: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    loop {
        if let Some(done) = attempt()? {
            return Ok(Some(done));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_what_the_attempt_found() {
        let mut tries = 0;
        let found = poll_until(
            Instant::now() + Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                tries += 1;
                Ok::<_, ()>((tries == 3).then_some(tries))
            },
        );
        assert_eq!(found, Ok(Some(3)));
    }

    #[test]
    fn tries_once_even_past_the_deadline_then_gives_up() {
        let mut tries = 0;
        let found = poll_until(Instant::now(), Duration::from_millis(1), || {
            tries += 1;
            Ok::<Option<()>, ()>(None)
        });
        assert_eq!((found, tries), (Ok(None), 1));
    }

    #[test]
    fn a_failed_attempt_ends_the_wait() {
        let found = poll_until(
            Instant::now() + Duration::from_secs(5),
            Duration::from_millis(1),
            || Err::<Option<()>, _>("broken"),
        );
        assert_eq!(found, Err("broken"));
    }
}
