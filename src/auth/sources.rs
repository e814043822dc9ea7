//! Where logins come from and go back to: environment, Kiro IDE / AWS SSO cache JSON files,
//! kiro-cli SQLite. Write-back is atomic and keeps every field we do not own.
