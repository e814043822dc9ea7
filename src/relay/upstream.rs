//! The open Kiro reply as the relay's [`Events`].

use std::time::Duration;

use super::Events;
use crate::error::Error;
use crate::kiro::client::{Next, Upstream};

impl Events for Upstream {
    fn next(&mut self, wait: Duration) -> Result<Next, Error> {
        Upstream::next(self, wait)
    }

    fn has_pending(&mut self) -> bool {
        Upstream::has_pending(self)
    }
}
