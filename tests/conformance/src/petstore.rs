//! An in-memory Swagger Petstore (OpenAPI 3.0, `tests/corpus/petstore3.yaml`)
//! on the server stubs generated from that spec: what someone implementing a
//! spec nobody here wrote would write. The round-trip test drives it through
//! the generated client, and schemathesis checks it against the spec
//! (`tests/contract/petstore3`, serving it with the `petstore-demo` binary, named apart from the `petstore3` CLI generated for that spec).
//!
//! Pets, orders and users live in maps. A pet sent as XML is read for its
//! `<id>`, `<name>` and `<photoUrl>`s only: the stubs hand XML over as text,
//! and a real implementation would parse it with an XML library.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use petstore3_server::types::{ApiResponse, Order, Pet, PetStatus, User};
use petstore3_server::{
    ApiFailure, Authenticator, Credential, Principal, RequestContext, ServerConfig, SwaggerPetstoreOpenApi30Api, Tier,
};

/// The API key `api_key` accepts.
pub const API_KEY: &str = "special-key";
/// The OAuth 2 access token `petstore_auth` accepts.
pub const ACCESS_TOKEN: &str = "oauth-access-token";

/// The store.
#[derive(Default)]
pub struct Petstore {
    pets: Mutex<BTreeMap<i64, Pet>>,
    orders: Mutex<BTreeMap<i64, Order>>,
    users: Mutex<BTreeMap<String, User>>,
    images: Mutex<HashMap<i64, Bytes>>,
}

/// Accepts the one API key and the one access token.
pub struct Keys;

impl Authenticator for Keys {
    async fn authenticate_scheme(&self, scheme: &str, credential: &Credential) -> Option<Principal> {
        let good = match (scheme, credential) {
            ("api_key", Credential::ApiKey(key)) => key == API_KEY,
            ("petstore_auth", Credential::Bearer(token)) => token == ACCESS_TOKEN,
            _ => false,
        };
        good.then(|| Principal::new(scheme, Tier::Enterprise))
    }
}

/// The router: the store behind the spec's path prefix (`/api/v3`), with a
/// rate limit no test run reaches.
pub fn router() -> axum::Router {
    let mut config = ServerConfig::default();
    config.rate_limit.enterprise = 100_000_000;
    petstore3_server::router(Petstore::default(), Keys, config)
}

/// The text of the first `<tag>` element in `xml`.
fn xml_text<'x>(xml: &'x str, tag: &str) -> Option<&'x str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].trim())
}

/// A pet from its XML form, the fields this store needs.
fn pet_from_xml(xml: &str) -> Result<Pet, ApiFailure> {
    let invalid = || ApiFailure::invalid_input("body", "invalid_xml").with_message("The pet's XML needs a <name>.");
    let name = xml_text(xml, "name").ok_or_else(invalid)?.to_owned();
    let id = xml_text(xml, "id").and_then(|id| id.parse().ok());
    let mut photo_urls = Vec::new();
    let mut rest = xml;
    while let Some(url) = xml_text(rest, "photoUrl") {
        photo_urls.push(url.to_owned());
        rest = &rest[rest.find("</photoUrl>").map_or(rest.len(), |i| i + 11)..];
    }
    Ok(Pet { id, name, category: None, photo_urls, tags: None, status: None })
}

/// A user with no field set.
fn blank_user() -> User {
    User {
        id: None,
        username: None,
        first_name: None,
        last_name: None,
        email: None,
        password: None,
        phone: None,
        user_status: None,
    }
}

fn pet_of(body: petstore3_server::AddPetBody) -> Result<Pet, ApiFailure> {
    use petstore3_server::AddPetBody as B;
    match body {
        B::Json(pet) | B::Form(pet) => Ok(pet),
        B::Xml(xml) => pet_from_xml(&xml),
    }
}

impl Petstore {
    fn next_id<T>(map: &BTreeMap<i64, T>) -> i64 {
        map.keys().next_back().map_or(1, |last| last.saturating_add(1))
    }

    fn store_pet(&self, mut pet: Pet) -> Pet {
        let mut pets = self.pets.lock().unwrap();
        let id = *pet.id.get_or_insert_with(|| Self::next_id(&pets));
        pets.insert(id, pet.clone());
        pet
    }
}

impl SwaggerPetstoreOpenApi30Api for Petstore {
    async fn update_pet(
        &self,
        _ctx: RequestContext,
        _params: petstore3_server::UpdatePetParams,
        body: petstore3_server::UpdatePetBody,
    ) -> Result<petstore3_server::UpdatePetResponse, ApiFailure> {
        use petstore3_server::UpdatePetBody as B;
        let pet = match body {
            B::Json(pet) | B::Form(pet) => pet,
            B::Xml(xml) => pet_from_xml(&xml)?,
        };
        let Some(id) = pet.id else {
            return Ok(petstore3_server::UpdatePetResponse::BadRequest);
        };
        if !self.pets.lock().unwrap().contains_key(&id) {
            return Ok(petstore3_server::UpdatePetResponse::NotFound);
        }
        Ok(petstore3_server::UpdatePetResponse::Ok(self.store_pet(pet)))
    }

    async fn add_pet(
        &self,
        _ctx: RequestContext,
        _params: petstore3_server::AddPetParams,
        body: petstore3_server::AddPetBody,
    ) -> Result<petstore3_server::AddPetResponse, ApiFailure> {
        Ok(petstore3_server::AddPetResponse::Ok(self.store_pet(pet_of(body)?)))
    }

    async fn find_pets_by_status(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::FindPetsByStatusParams,
    ) -> Result<petstore3_server::FindPetsByStatusResponse, ApiFailure> {
        let wanted = params.status.as_str();
        let pets = self.pets.lock().unwrap();
        let found = pets.values().filter(|p| p.status.as_ref().is_some_and(|s| s.as_str() == wanted)).cloned();
        Ok(petstore3_server::FindPetsByStatusResponse::Ok(found.collect()))
    }

    async fn find_pets_by_tags(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::FindPetsByTagsParams,
    ) -> Result<petstore3_server::FindPetsByTagsResponse, ApiFailure> {
        let wanted = params.tags.unwrap_or_default();
        let pets = self.pets.lock().unwrap();
        let found = pets
            .values()
            .filter(|p| p.tags.iter().flatten().any(|t| t.name.as_ref().is_some_and(|name| wanted.contains(name))));
        Ok(petstore3_server::FindPetsByTagsResponse::Ok(found.cloned().collect()))
    }

    async fn get_pet_by_id(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::GetPetByIdParams,
    ) -> Result<petstore3_server::GetPetByIdResponse, ApiFailure> {
        Ok(match self.pets.lock().unwrap().get(&params.pet_id) {
            Some(pet) => petstore3_server::GetPetByIdResponse::Ok(pet.clone()),
            None => petstore3_server::GetPetByIdResponse::NotFound,
        })
    }

    async fn update_pet_with_form(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::UpdatePetWithFormParams,
    ) -> Result<petstore3_server::UpdatePetWithFormResponse, ApiFailure> {
        let mut pets = self.pets.lock().unwrap();
        let Some(pet) = pets.get_mut(&params.pet_id) else {
            return Ok(petstore3_server::UpdatePetWithFormResponse::BadRequest);
        };
        if let Some(name) = params.name {
            pet.name = name;
        }
        if let Some(status) = params.status {
            match serde_json::from_value::<PetStatus>(serde_json::Value::String(status)) {
                Ok(status) => pet.status = Some(status),
                Err(_) => return Ok(petstore3_server::UpdatePetWithFormResponse::BadRequest),
            }
        }
        Ok(petstore3_server::UpdatePetWithFormResponse::Ok(pet.clone()))
    }

    async fn delete_pet(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::DeletePetParams,
    ) -> Result<petstore3_server::DeletePetResponse, ApiFailure> {
        Ok(match self.pets.lock().unwrap().remove(&params.pet_id) {
            Some(_) => petstore3_server::DeletePetResponse::Ok,
            None => petstore3_server::DeletePetResponse::BadRequest,
        })
    }

    async fn upload_file(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::UploadFileParams,
        body: Option<Bytes>,
    ) -> Result<petstore3_server::UploadFileResponse, ApiFailure> {
        if !self.pets.lock().unwrap().contains_key(&params.pet_id) {
            return Ok(petstore3_server::UploadFileResponse::NotFound);
        }
        let image = body.unwrap_or_default();
        let message = format!(
            "additionalMetadata: {}\nFile uploaded, {} bytes",
            params.additional_metadata.as_deref().unwrap_or(""),
            image.len()
        );
        self.images.lock().unwrap().insert(params.pet_id, image);
        Ok(petstore3_server::UploadFileResponse::Ok(ApiResponse {
            code: Some(200),
            type_: Some("unknown".into()),
            message: Some(message),
        }))
    }

    async fn get_inventory(
        &self,
        _ctx: RequestContext,
        _params: petstore3_server::GetInventoryParams,
    ) -> Result<petstore3_server::GetInventoryResponse, ApiFailure> {
        let mut counts: BTreeMap<String, i32> = BTreeMap::new();
        for pet in self.pets.lock().unwrap().values() {
            if let Some(status) = &pet.status {
                *counts.entry(status.as_str().to_owned()).or_default() += 1;
            }
        }
        Ok(petstore3_server::GetInventoryResponse::Ok(counts))
    }

    async fn place_order(
        &self,
        _ctx: RequestContext,
        _params: petstore3_server::PlaceOrderParams,
        body: Option<petstore3_server::PlaceOrderBody>,
    ) -> Result<petstore3_server::PlaceOrderResponse, ApiFailure> {
        use petstore3_server::PlaceOrderBody as B;
        let mut order = match body {
            Some(B::Json(order) | B::Form(order)) => order,
            Some(B::Xml(_)) | None => return Ok(petstore3_server::PlaceOrderResponse::BadRequest),
        };
        let mut orders = self.orders.lock().unwrap();
        let id = *order.id.get_or_insert_with(|| Petstore::next_id(&orders));
        orders.insert(id, order.clone());
        Ok(petstore3_server::PlaceOrderResponse::Ok(order))
    }

    async fn get_order_by_id(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::GetOrderByIdParams,
    ) -> Result<petstore3_server::GetOrderByIdResponse, ApiFailure> {
        Ok(match self.orders.lock().unwrap().get(&params.order_id) {
            Some(order) => petstore3_server::GetOrderByIdResponse::Ok(order.clone()),
            None => petstore3_server::GetOrderByIdResponse::NotFound,
        })
    }

    async fn delete_order(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::DeleteOrderParams,
    ) -> Result<petstore3_server::DeleteOrderResponse, ApiFailure> {
        Ok(match self.orders.lock().unwrap().remove(&params.order_id) {
            Some(_) => petstore3_server::DeleteOrderResponse::Ok,
            None => petstore3_server::DeleteOrderResponse::NotFound,
        })
    }

    async fn create_user(
        &self,
        _ctx: RequestContext,
        _params: petstore3_server::CreateUserParams,
        body: Option<petstore3_server::CreateUserBody>,
    ) -> Result<petstore3_server::CreateUserResponse, ApiFailure> {
        use petstore3_server::CreateUserBody as B;
        let user = match body {
            Some(B::Json(user) | B::Form(user)) => user,
            Some(B::Xml(_)) | None => blank_user(),
        };
        let name = user.username.clone().unwrap_or_default();
        self.users.lock().unwrap().insert(name, user.clone());
        Ok(petstore3_server::CreateUserResponse::Ok(user))
    }

    async fn create_users_with_list_input(
        &self,
        _ctx: RequestContext,
        _params: petstore3_server::CreateUsersWithListInputParams,
        body: Option<Vec<User>>,
    ) -> Result<petstore3_server::CreateUsersWithListInputResponse, ApiFailure> {
        let users = body.unwrap_or_default();
        let mut stored = self.users.lock().unwrap();
        for user in &users {
            stored.insert(user.username.clone().unwrap_or_default(), user.clone());
        }
        Ok(petstore3_server::CreateUsersWithListInputResponse::Ok(users.last().cloned().unwrap_or_else(blank_user)))
    }

    async fn login_user(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::LoginUserParams,
    ) -> Result<petstore3_server::LoginUserResponse, ApiFailure> {
        let users = self.users.lock().unwrap();
        let known = params.username.as_ref().and_then(|name| users.get(name));
        match known {
            Some(user) if user.password == params.password => Ok(petstore3_server::LoginUserResponse::Ok {
                body: format!("logged in user session: {}", params.username.unwrap_or_default()),
                headers: petstore3_server::LoginUserOkHeaders {
                    x_expires_after: Some("2026-12-31T00:00:00Z".into()),
                    x_rate_limit: Some(5000),
                },
            }),
            _ => Ok(petstore3_server::LoginUserResponse::BadRequest),
        }
    }

    async fn logout_user(
        &self,
        _ctx: RequestContext,
        _params: petstore3_server::LogoutUserParams,
    ) -> Result<petstore3_server::LogoutUserResponse, ApiFailure> {
        Ok(petstore3_server::LogoutUserResponse::Ok)
    }

    async fn get_user_by_name(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::GetUserByNameParams,
    ) -> Result<petstore3_server::GetUserByNameResponse, ApiFailure> {
        Ok(match self.users.lock().unwrap().get(&params.username) {
            Some(user) => petstore3_server::GetUserByNameResponse::Ok(user.clone()),
            None => petstore3_server::GetUserByNameResponse::NotFound,
        })
    }

    async fn update_user(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::UpdateUserParams,
        body: Option<petstore3_server::UpdateUserBody>,
    ) -> Result<petstore3_server::UpdateUserResponse, ApiFailure> {
        use petstore3_server::UpdateUserBody as B;
        let mut users = self.users.lock().unwrap();
        if !users.contains_key(&params.username) {
            return Ok(petstore3_server::UpdateUserResponse::NotFound);
        }
        match body {
            Some(B::Json(user) | B::Form(user)) => {
                users.insert(params.username, user);
                Ok(petstore3_server::UpdateUserResponse::Ok)
            }
            Some(B::Xml(_)) | None => Ok(petstore3_server::UpdateUserResponse::BadRequest),
        }
    }

    async fn delete_user(
        &self,
        _ctx: RequestContext,
        params: petstore3_server::DeleteUserParams,
    ) -> Result<petstore3_server::DeleteUserResponse, ApiFailure> {
        Ok(match self.users.lock().unwrap().remove(&params.username) {
            Some(_) => petstore3_server::DeleteUserResponse::Ok,
            None => petstore3_server::DeleteUserResponse::NotFound,
        })
    }
}
