//! `named_enum!`: an enum kept in the database and shown in the API by a fixed lower-case name.

/// Declares an enum whose variants each have one stable name: `as_str`, `ALL`, `Display` and
/// `FromStr` (an unknown name is [`UnknownName`]). The names are what the database's CHECK
/// constraints and the API's documents list, so they never change once shipped.
macro_rules! named_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::named::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or($crate::domain::named::UnknownName)
            }
        }
    };
}

pub(crate) use named_enum;

/// A name that is none of an enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not one of the known names")]
pub struct UnknownName;

#[cfg(test)]
mod tests {
    named_enum! {
        enum Colour { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn every_name_reads_back_as_its_variant_and_nothing_else_does() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(*c));
        }
        assert_eq!(Colour::DarkBlue.to_string(), "dark_blue");
        assert!("Red".parse::<Colour>().is_err());
        assert!("".parse::<Colour>().is_err());
    }
}
