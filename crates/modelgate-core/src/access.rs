//! Who may do what in the registry. Pure functions of the caller and the resource, so the rules live in
//! one place and the server only asks.

use crate::{Model, User};

/// Why a request is refused, phrased for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// The role that registers and maintains models; holders may change any model's metadata and push
/// versions to any model.
pub const MODEL_DEVELOPER_ROLE: &str = "model_developer";

/// Proof that the caller administers the server; only [`require_admin`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct AdminCapability(());

pub fn require_admin(user: &User) -> Result<AdminCapability, Denied> {
    if user.is_admin() {
        Ok(AdminCapability(()))
    } else {
        Err(Denied(format!(
            "user {:?} lacks the admin role needed for this action",
            user.username.as_str()
        )))
    }
}

/// Proof that the caller may change a model's metadata and push versions to it; only
/// [`may_maintain_model`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct ModelMaintainer(());

/// The model's owner, the user who registered it, model developers and admins maintain a model.
pub fn may_maintain_model(user: &User, model: &Model) -> Result<ModelMaintainer, Denied> {
    let allowed = user.username == model.owner
        || model.created_by == user.username.as_str()
        || user.has_role(MODEL_DEVELOPER_ROLE)
        || user.is_admin();
    if allowed {
        Ok(ModelMaintainer(()))
    } else {
        Err(Denied(format!(
            "user {:?} may not change model {:?}: only its owner ({}), the user who registered it, \
             holders of the {MODEL_DEVELOPER_ROLE} role and admins may",
            user.username.as_str(),
            model.name.as_str(),
            model.owner
        )))
    }
}

/// Changing who is accountable for a model, or how risky it is, changes which rules govern it: admins only.
pub fn may_change_governance(user: &User) -> Result<AdminCapability, Denied> {
    require_admin(user).map_err(|_| {
        Denied(format!(
            "user {:?} may not change a model's owner or risk tier: that needs the admin role",
            user.username.as_str()
        ))
    })
}

/// A user manages their own tokens; admins manage everyone's.
pub fn may_manage_tokens_of(user: &User, token_owner: &str) -> Result<(), Denied> {
    if user.username.as_str() == token_owner || user.is_admin() {
        Ok(())
    } else {
        Err(Denied(format!(
            "user {:?} may not manage tokens of {token_owner:?}: only that user and admins may",
            user.username.as_str()
        )))
    }
}

/// Roles are granted by admins, and never by anyone to themselves: an admin who could give themself
/// `validator` could sign off their own work, so the two-person rule would rest on one person.
pub fn may_change_roles_of(
    user: &User,
    target: &crate::Username,
) -> Result<AdminCapability, Denied> {
    if &user.username == target {
        return Err(Denied(format!(
            "user {:?} may not change their own roles: another admin must grant or remove them",
            user.username.as_str()
        )));
    }
    require_admin(user)
}

/// Suspending or reinstating a version takes one of the policy's risk-officer roles, or admin.
pub fn may_suspend(user: &User, risk_officer_roles: &[crate::Role]) -> Result<(), Denied> {
    if user.is_admin()
        || risk_officer_roles
            .iter()
            .any(|role| user.has_role(role.as_str()))
    {
        return Ok(());
    }
    let roles: Vec<&str> = risk_officer_roles.iter().map(crate::Role::as_str).collect();
    Err(Denied(format!(
        "suspending and reinstating versions needs a risk-officer role ({}) or admin",
        roles.join(", ")
    )))
}

/// Registering an evaluation dataset (which the server reads, checks and profiles) takes one of the
/// policy's dataset-registrar roles, or admin.
pub fn may_register_datasets(user: &User, registrar_roles: &[crate::Role]) -> Result<(), Denied> {
    if user.is_admin()
        || registrar_roles
            .iter()
            .any(|role| user.has_role(role.as_str()))
    {
        return Ok(());
    }
    let roles: Vec<&str> = registrar_roles.iter().map(crate::Role::as_str).collect();
    Err(Denied(format!(
        "user {:?} may not register datasets: that needs one of the roles the policy names in \
         dataset_registrar_roles ({}) or admin",
        user.username.as_str(),
        if roles.is_empty() {
            "none".to_owned()
        } else {
            roles.join(", ")
        }
    )))
}

/// A request is withdrawn by whoever opened it, or by an admin.
pub fn may_withdraw(
    user: &User,
    requester: &crate::Username,
    request_id: i64,
) -> Result<(), Denied> {
    if &user.username == requester || user.is_admin() {
        Ok(())
    } else {
        Err(Denied(format!(
            "only the requester ({requester}) or an admin may withdraw request {request_id}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelName, RiskTier, Role, Timestamp, Username};

    fn user(name: &str, roles: &[&str]) -> User {
        User {
            id: 1,
            username: Username::parse(name).unwrap(),
            printed_name: name.to_owned(),
            email: None,
            roles: roles.iter().map(|r| Role::parse(r).unwrap()).collect(),
            active: true,
            has_password: false,
            created_at: Timestamp::from_unix_millis(0),
        }
    }

    fn model(owner: &str, created_by: &str) -> Model {
        Model {
            id: 1,
            name: ModelName::parse("m").unwrap(),
            owner: Username::parse(owner).unwrap(),
            risk_tier: RiskTier::High,
            description: String::new(),
            intended_use: String::new(),
            tags: Default::default(),
            created_by: created_by.to_owned(),
            created_at: Timestamp::from_unix_millis(0),
            updated_at: Timestamp::from_unix_millis(0),
            archived_at: None,
            version_count: 0,
        }
    }

    #[test]
    fn who_maintains_a_model() {
        let cases = [
            ("owner", &[][..], "owner", "someone", true),
            ("creator", &[], "owner", "creator", true),
            ("dev", &["model_developer"], "owner", "someone", true),
            ("root", &["admin"], "owner", "someone", true),
            ("validator", &["validator"], "owner", "someone", false),
            ("nobody", &[], "owner", "someone", false),
        ];
        for (name, roles, owner, creator, expected) in cases {
            let outcome = may_maintain_model(&user(name, roles), &model(owner, creator));
            assert_eq!(outcome.is_ok(), expected, "{name}");
        }
    }

    #[test]
    fn admin_rules() {
        assert!(require_admin(&user("root", &["admin"])).is_ok());
        let denied = require_admin(&user("dev", &["model_developer"])).unwrap_err();
        assert!(denied.0.contains("admin role"));
        assert!(may_change_governance(&user("dev", &["model_developer"])).is_err());
        assert!(may_manage_tokens_of(&user("ann", &[]), "ann").is_ok());
        assert!(may_manage_tokens_of(&user("ann", &[]), "bob").is_err());
        assert!(may_manage_tokens_of(&user("root", &["admin"]), "bob").is_ok());
    }

    #[test]
    fn nobody_changes_their_own_roles() {
        let bob = Username::parse("bob").unwrap();
        let root = Username::parse("root").unwrap();
        assert!(may_change_roles_of(&user("root", &["admin"]), &bob).is_ok());
        let denied = may_change_roles_of(&user("root", &["admin"]), &root).unwrap_err();
        assert!(denied.0.contains("their own roles"), "{denied}");
        assert!(may_change_roles_of(&user("dev", &["model_developer"]), &bob).is_err());
    }

    #[test]
    fn suspension_and_withdrawal_rules() {
        let officer_roles = [Role::parse("risk_officer").unwrap()];
        assert!(may_suspend(&user("ro", &["risk_officer"]), &officer_roles).is_ok());
        assert!(may_suspend(&user("root", &["admin"]), &officer_roles).is_ok());
        assert!(
            may_suspend(&user("dev", &["model_developer"]), &officer_roles)
                .unwrap_err()
                .0
                .contains("risk_officer")
        );
        let requester = Username::parse("ann").unwrap();
        assert!(may_withdraw(&user("ann", &[]), &requester, 1).is_ok());
        assert!(may_withdraw(&user("root", &["admin"]), &requester, 1).is_ok());
        assert!(may_withdraw(&user("bob", &["validator"]), &requester, 1).is_err());
    }

    #[test]
    fn dataset_registration_rules() {
        let registrars = [
            Role::parse("model_developer").unwrap(),
            Role::parse("validator").unwrap(),
        ];
        let cases: [(&str, &[&str], bool); 5] = [
            ("dev", &["model_developer"], true),
            ("val", &["validator", "compliance"], true),
            ("root", &["admin"], true),
            ("comp", &["compliance"], false),
            ("nobody", &[], false),
        ];
        for (name, roles, expected) in cases {
            let outcome = may_register_datasets(&user(name, roles), &registrars);
            assert_eq!(outcome.is_ok(), expected, "{name}");
        }
        let denied = may_register_datasets(&user("nobody", &[]), &registrars).unwrap_err();
        assert!(denied.0.contains("model_developer, validator"), "{denied}");
        assert!(may_register_datasets(&user("dev", &["model_developer"]), &[]).is_err());
    }
}
