//! The `[income]` section (where takings are posted: LocalGov IMS or a file) and each service's
//! `[services.<code>.posting]` codes, checked at start-up against the target system's limits.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::income::document::{FileLayout, Layout};
use crate::domain::income::{AccountReferenceTemplate, FieldLimits, MopCodes, PostingCodes};

/// Where the day's takings go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncomeTarget {
    /// No batches are built (the ledger CSV is still there).
    #[default]
    Off,
    /// Pushed to LocalGov IMS's `POST /api/TransactionImport`.
    LocalgovIms,
    /// Written as a file in `[income.file]`'s layout, downloaded and imported by a person.
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncomeSettings {
    pub target: IncomeTarget,
    /// The first London day whose takings are posted; everything before it was taken into the
    /// income system some other way. Required once `target` is set.
    pub starts_on: Option<NaiveDate>,
    /// Build and post batches in this process (one server at a time holds each job's lease).
    pub worker: bool,
    /// The London hour (0-23) after which yesterday's batches are built.
    pub build_hour: u32,
    /// The account a row is posted to when its own reference cannot be made (a metadata key
    /// missing, or too long): the income system's suspense account, allocated by a person.
    pub suspense_account_reference: String,
    /// How long after a failed or unanswered post to try again.
    pub retry_interval_seconds: u64,
    pub localgov_ims: Option<LocalGovImsSettings>,
    pub file: Option<FileLayout>,
}

impl Default for IncomeSettings {
    fn default() -> Self {
        Self {
            target: IncomeTarget::Off,
            starts_on: None,
            worker: true,
            build_hour: 1,
            suspense_account_reference: "SUSPENSE".into(),
            retry_interval_seconds: 300,
            localgov_ims: None,
            file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalGovImsSettings {
    /// The API's base URL (its paths start `/api/`), or `simulator` for the built-in one.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set.
    #[serde(default)]
    pub api_key: Option<SecretSource>,
    /// The import type LocalGov IMS files our batches under.
    pub import_type_id: i32,
    /// The user code rows are posted as.
    pub user_code: i32,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// A service's codes in the income system.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostingSettings {
    pub office_code: String,
    /// Per provider (`govuk_pay`, `stripe`): `{ card = "…", wallet = "…" }`.
    pub mop_codes: BTreeMap<String, MopCodes>,
    pub vat_code: String,
    /// 2000 is 20%; 0 for income outside the scope of VAT.
    #[serde(default)]
    pub vat_rate_basis_points: u32,
    /// Whether a row's amount is the gross (VAT included) or the net with the VAT beside it.
    #[serde(default = "included")]
    pub amounts_include_vat: bool,
    /// `{request_ref}` (the CRM's reference), `{metadata.<key>}`, with text around them.
    #[serde(default = "request_ref")]
    pub account_reference: String,
}

fn included() -> bool {
    true
}

fn request_ref() -> String {
    "{request_ref}".into()
}

impl IncomeSettings {
    /// The layout batches are written in, and the limits their rows keep within.
    pub fn layout(&self) -> Option<(Layout, FieldLimits)> {
        match self.target {
            IncomeTarget::Off => None,
            IncomeTarget::LocalgovIms => self.localgov_ims.as_ref().map(|ims| {
                (
                    Layout::LocalgovIms {
                        import_type_id: ims.import_type_id,
                        user_code: ims.user_code,
                    },
                    FieldLimits::LOCALGOV_IMS,
                )
            }),
            IncomeTarget::File => self
                .file
                .as_ref()
                .map(|file| (Layout::File(file.clone()), FieldLimits::FILE)),
        }
    }

    pub(super) fn validate(
        &self,
        services: &BTreeMap<String, ServiceSettings>,
        accounts: &BTreeMap<String, AccountSettings>,
        production: bool,
    ) -> Result<(), ConfigError> {
        if self.build_hour > 23 {
            return Err(problem("income.build_hour", "must be 0 to 23"));
        }
        if self.target == IncomeTarget::Off {
            return Ok(());
        }
        if self.starts_on.is_none() {
            return Err(problem(
                "income.starts_on",
                "say from which London day (YYYY-MM-DD) takings are posted",
            ));
        }
        self.validate_target(production)?;
        let (_, limits) = self.layout().expect("checked above");
        let suspense = self.suspense_account_reference.trim();
        if suspense.is_empty() || suspense.chars().count() > limits.account_reference {
            return Err(problem(
                "income.suspense_account_reference",
                &format!("must be 1 to {} characters", limits.account_reference),
            ));
        }
        for (code, service) in services {
            let key = format!("services.{code}.posting");
            let Some(posting) = &service.posting else {
                return Err(problem(
                    key,
                    "every service needs posting codes once income.target is set",
                ));
            };
            let provider = accounts[&service.account].kind;
            posting.codes(service, provider, &limits, &key)?;
        }
        Ok(())
    }

    fn validate_target(&self, production: bool) -> Result<(), ConfigError> {
        match self.target {
            IncomeTarget::Off => Ok(()),
            IncomeTarget::LocalgovIms => {
                let Some(ims) = &self.localgov_ims else {
                    return Err(problem(
                        "income.localgov_ims",
                        "is needed when target = \"localgov_ims\"",
                    ));
                };
                if ims.base_url == SIMULATOR_BASE_URL {
                    if production {
                        return Err(problem(
                            "income.localgov_ims.base_url",
                            "the built-in simulator may not run when environment = \"production\"",
                        ));
                    }
                } else if !is_web_url(&ims.base_url, production) {
                    return Err(problem(
                        "income.localgov_ims.base_url",
                        "must be an https URL, or \"simulator\" outside production",
                    ));
                }
                if let Some(key) = &ims.api_key {
                    key.validate("income.localgov_ims.api_key", production)?;
                }
                Ok(())
            }
            IncomeTarget::File => match &self.file {
                None => Err(problem("income.file", "is needed when target = \"file\"")),
                Some(layout) => match layout.problem() {
                    Some(why) => Err(problem("income.file", &why)),
                    None => Ok(()),
                },
            },
        }
    }
}

impl PostingSettings {
    /// The codes as the domain reads them, each checked against `limits`.
    pub fn codes(
        &self,
        service: &ServiceSettings,
        provider: crate::domain::ProviderKind,
        limits: &FieldLimits,
        key: &str,
    ) -> Result<PostingCodes, ConfigError> {
        let fits = |field: &str, value: &str, limit: usize| {
            let length = value.trim().chars().count();
            if length == 0 || length > limit || value.trim() != value {
                Err(problem(
                    format!("{key}.{field}"),
                    &format!("must be 1 to {limit} characters, without spaces around them"),
                ))
            } else {
                Ok(())
            }
        };
        fits("office_code", &self.office_code, limits.office_code)?;
        fits("vat_code", &self.vat_code, limits.vat_code)?;
        // The fund code is the service's own (`services.<code>.fund_code`).
        let fund_key = key.trim_end_matches(".posting");
        fits_in(
            &format!("{fund_key}.fund_code"),
            &service.fund_code,
            limits.fund_code,
        )?;
        self.check_mop_codes(provider, limits.mop_code, key, &fits)?;
        if self.vat_rate_basis_points > 10_000 {
            return Err(problem(
                format!("{key}.vat_rate_basis_points"),
                "is at most 10000 (100%)",
            ));
        }
        let template = AccountReferenceTemplate::parse(&self.account_reference)
            .map_err(|why| problem(format!("{key}.account_reference"), &why))?;
        if template.fixed_len() >= limits.account_reference {
            return Err(problem(
                format!("{key}.account_reference"),
                &format!(
                    "its fixed text leaves no room within {} characters",
                    limits.account_reference
                ),
            ));
        }
        Ok(PostingCodes {
            service_name: service.name.clone(),
            fund_code: service.fund_code.clone(),
            office_code: self.office_code.clone(),
            mop_codes: self.mop_codes.clone(),
            vat_code: self.vat_code.clone(),
            vat_rate_basis_points: self.vat_rate_basis_points,
            amounts_include_vat: self.amounts_include_vat,
            account_reference: template,
        })
    }
}

impl PostingSettings {
    /// Method-of-payment codes for known providers only, each within `limit`, and the
    /// service's own provider among them.
    fn check_mop_codes(
        &self,
        provider: crate::domain::ProviderKind,
        limit: usize,
        key: &str,
        fits: &dyn Fn(&str, &str, usize) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        for (name, mop) in &self.mop_codes {
            if !["govuk_pay", "stripe"].contains(&name.as_str()) {
                return Err(problem(
                    format!("{key}.mop_codes.{name}"),
                    "providers are govuk_pay and stripe",
                ));
            }
            fits(&format!("mop_codes.{name}.card"), &mop.card, limit)?;
            if let Some(wallet) = &mop.wallet {
                fits(&format!("mop_codes.{name}.wallet"), wallet, limit)?;
            }
        }
        let own = match provider {
            crate::domain::ProviderKind::GovukPay => "govuk_pay",
            crate::domain::ProviderKind::Stripe => "stripe",
        };
        if !self.mop_codes.contains_key(own) {
            return Err(problem(
                format!("{key}.mop_codes.{own}"),
                "the service's account is on this provider: its method-of-payment codes are needed",
            ));
        }
        Ok(())
    }
}

fn fits_in(key: &str, value: &str, limit: usize) -> Result<(), ConfigError> {
    if value.chars().count() > limit {
        return Err(problem(
            key,
            &format!("the income system takes at most {limit} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use figment::providers::{Format, Serialized, Toml};
    use figment::Figment;

    use super::*;

    const POSTING: &str = "office_code = \"CF\"\nvat_code = \"Z\"\n\
        mop_codes = { govuk_pay = { card = \"GPC\" }, stripe = { card = \"STC\" } }\n";

    /// The development accounts and services, posting to LocalGov IMS, with `extra` after.
    fn with(extra: &str) -> Result<Settings, ConfigError> {
        let text = format!(
            "[income]\ntarget = \"localgov_ims\"\nstarts_on = \"2026-12-01\"\n\
             [income.localgov_ims]\nbase_url = \"simulator\"\nimport_type_id = 1\nuser_code = 2\n\
             [services.demo.posting]\n{POSTING}\
             [services.demo-stripe.posting]\n{POSTING}{extra}"
        );
        let base = Settings::bare().with_default_accounts();
        let settings: Settings = Figment::from(Serialized::defaults(base))
            .merge(Toml::string(&text))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()
    }

    fn refusal(extra: &str) -> String {
        with(extra).expect_err(extra).0
    }

    #[test]
    fn codes_within_the_income_systems_columns_are_taken() {
        let settings = with("").unwrap();
        let (layout, limits) = settings.income.layout().unwrap();
        assert!(matches!(
            layout,
            Layout::LocalgovIms {
                import_type_id: 1,
                user_code: 2
            }
        ));
        assert_eq!(limits, FieldLimits::LOCALGOV_IMS);
    }

    /// The development settings, changed by `change`, refused with a message naming `key`.
    fn refused_naming(key: &str, change: impl FnOnce(&mut Settings)) {
        let mut settings = with("").unwrap();
        change(&mut settings);
        let message = settings.validate().expect_err(key).0;
        assert!(message.contains(key), "{key}: {message}");
    }

    fn demo(settings: &mut Settings) -> &mut PostingSettings {
        let service = settings.services.get_mut("demo").unwrap();
        service.posting.as_mut().unwrap()
    }

    #[test]
    fn each_code_beyond_its_column_is_named_by_its_key() {
        refused_naming("services.demo.posting.mop_codes.govuk_pay.card", |s| {
            demo(s).mop_codes.get_mut("govuk_pay").unwrap().card = "TOOLONG".into()
        });
        refused_naming("services.demo.posting.mop_codes.paypal", |s| {
            let codes = demo(s).mop_codes["stripe"].clone();
            demo(s).mop_codes.insert("paypal".into(), codes);
        });
        refused_naming("services.demo.fund_code", |s| {
            s.services.get_mut("demo").unwrap().fund_code = "FUND123".into()
        });
        refused_naming("services.demo.posting.office_code", |s| {
            demo(s).office_code = "CFX".into()
        });
        refused_naming("services.demo.posting.vat_code", |s| {
            demo(s).vat_code = " Z".into()
        });
        refused_naming("services.demo.posting.vat_rate_basis_points", |s| {
            demo(s).vat_rate_basis_points = 10_001
        });
        refused_naming("income.suspense_account_reference", |s| {
            s.income.suspense_account_reference = "S".repeat(31)
        });
        assert!(refusal("[income.x]\n").contains("x"));
    }

    #[test]
    fn an_account_reference_must_name_a_field_and_leave_it_room() {
        refused_naming("services.demo.posting.account_reference", |s| {
            demo(s).account_reference = "{email}".into()
        });
        refused_naming("no room", |s| {
            demo(s).account_reference = format!("{}{{request_ref}}", "X".repeat(30))
        });
    }

    #[test]
    fn posting_needs_a_start_day_codes_for_every_service_and_its_target() {
        let mut settings = with("").unwrap();
        settings.income.starts_on = None;
        assert!(settings
            .clone()
            .validate()
            .unwrap_err()
            .0
            .contains("income.starts_on"));
        let mut settings = with("").unwrap();
        settings.services.get_mut("demo").unwrap().posting = None;
        assert!(settings
            .clone()
            .validate()
            .unwrap_err()
            .0
            .contains("services.demo.posting"));
        let mut settings = with("").unwrap();
        settings
            .services
            .get_mut("demo")
            .unwrap()
            .posting
            .as_mut()
            .unwrap()
            .mop_codes
            .remove("govuk_pay");
        assert!(settings
            .clone()
            .validate()
            .unwrap_err()
            .0
            .contains("mop_codes.govuk_pay"));
        let mut settings = with("").unwrap();
        settings.income.localgov_ims = None;
        assert!(settings
            .clone()
            .validate()
            .unwrap_err()
            .0
            .contains("income.localgov_ims"));
        let mut settings = with("").unwrap();
        settings.income.target = IncomeTarget::File;
        assert!(settings
            .clone()
            .validate()
            .unwrap_err()
            .0
            .contains("income.file"));
        refused_naming("income.localgov_ims.base_url", |s| {
            s.income.localgov_ims.as_mut().unwrap().base_url = "ftp://ims".into()
        });
        refused_naming("income.build_hour", |s| s.income.build_hour = 24);
    }

    #[test]
    fn the_example_layouts_are_real_settings_and_the_example_posts_every_service() {
        let example = include_str!("../../deploy/counterfoil.example.toml");
        for layout in [
            include_str!("../../deploy/income/icon-style.toml"),
            include_str!("../../deploy/income/pay360-style.toml"),
        ] {
            let settings: Settings = Figment::from(Serialized::defaults(Settings::bare()))
                .merge(Toml::string(example))
                .merge(Toml::string(layout))
                .extract()
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(settings.income.target, IncomeTarget::File);
            let file = settings.income.file.as_ref().unwrap();
            assert_eq!(file.problem(), None);
            for (code, service) in &settings.services {
                let posting = service
                    .posting
                    .as_ref()
                    .expect("the example codes every service");
                let provider = settings.accounts[&service.account].kind;
                posting
                    .codes(service, provider, &FieldLimits::LOCALGOV_IMS, code)
                    .unwrap_or_else(|e| panic!("{code}: {e}"));
            }
        }
    }
}
