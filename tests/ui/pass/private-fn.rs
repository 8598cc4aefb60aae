//! A private fn gives a private struct with private fields, usable within its module.
#![deny(unreachable_pub, missing_docs, dead_code)]

mod jobs {
    use jobsmith::job;

    #[job]
    async fn tidy_up(days: u32) -> Result<(), String> {
        let _ = days;
        Ok(())
    }

    pub(crate) fn make() -> impl jobsmith::Job {
        TidyUp { days: 3 }
    }
}

fn main() {
    let _ = jobs::make();
}
