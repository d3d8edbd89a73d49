//! A round trip on a spec nobody here wrote: the Swagger Petstore
//! (`tests/corpus/petstore3.yaml`). Its generated server, implemented in
//! memory (`runagent_conformance::petstore`), is driven through every
//! operation by its generated client: pets sent as JSON, as a form and as
//! XML, an image as bytes, orders, users, a login whose token comes back
//! with headers, and the API key and OAuth 2 token each where the spec asks.

use bytes::Bytes;
use petstore3_client::operations::{AddPetBody, CreateUserBody, PlaceOrderBody, UpdatePetBody, UpdateUserBody};
use petstore3_client::types::{Category, FindPetsByStatusStatus, Order, OrderStatus, Pet, PetStatus, Tag, User};
use petstore3_client::{Client, Credential};
use runagent_conformance::petstore::{ACCESS_TOKEN, API_KEY};

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, runagent_conformance::petstore::router()).await.unwrap() });
    format!("http://{address}/api/v3")
}

fn client(base: &str) -> Client {
    Client::builder()
        .base_url(base)
        .max_retries(0)
        .credential("api_key", Credential::api_key(API_KEY))
        .credential("petstore_auth", Credential::bearer(ACCESS_TOKEN))
        .build()
        .unwrap()
}

fn pet(name: &str) -> Pet {
    Pet {
        id: None,
        name: name.into(),
        category: Some(Category { id: Some(1), name: Some("Dogs".into()) }),
        photo_urls: vec!["https://example.com/a.jpg".into(), "https://example.com/b.jpg".into()],
        tags: Some(vec![Tag { id: Some(7), name: Some("good".into()) }]),
        status: Some(PetStatus::Available),
    }
}

fn user(name: &str, password: &str) -> User {
    User {
        id: Some(10),
        username: Some(name.into()),
        first_name: Some("Ann".into()),
        last_name: None,
        email: Some("ann@example.com".into()),
        password: Some(password.into()),
        phone: None,
        user_status: Some(1),
    }
}

#[tokio::test]
async fn pets_go_in_as_json_a_form_or_xml_and_come_back_as_json() {
    let base = serve().await;
    let client = client(&base);

    // JSON, the first media type, for a plain value.
    let rex = client.add_pet(pet("Rex")).send().await.unwrap().into_body();
    let rex_id = rex.id.expect("the store gives an id");
    assert_eq!(rex, Pet { id: Some(rex_id), ..pet("Rex") });

    // A form: nested objects travel as JSON text, arrays as repeated fields.
    let fido = client.add_pet(AddPetBody::Form(pet("Fido & Co"))).send().await.unwrap().into_body();
    assert_eq!(fido, Pet { id: fido.id, ..pet("Fido & Co") });

    // XML goes as text, read by the implementation.
    let xml = "<pet><name>Tom</name><photoUrls><photoUrl>https://example.com/t.jpg</photoUrl></photoUrls></pet>";
    let tom = client.add_pet(AddPetBody::Xml(xml.into())).send().await.unwrap().into_body();
    assert_eq!((tom.name.as_str(), tom.photo_urls.as_slice()), ("Tom", &["https://example.com/t.jpg".to_owned()][..]));

    let got = client.get_pet_by_id(rex_id).send().await.unwrap().into_body();
    assert_eq!(got, rex);
    let by_status = client.find_pets_by_status().status(FindPetsByStatusStatus::Available).send().await.unwrap();
    assert_eq!(by_status.into_body().len(), 2);
    let by_tag = client.find_pets_by_tags().tags(vec!["good".into()]).send().await.unwrap().into_body();
    assert_eq!(by_tag.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["Rex", "Fido & Co"]);

    // Updates: the whole pet as JSON, then fields as query parameters.
    let renamed = Pet { name: "Rex II".into(), ..rex.clone() };
    let updated = client.update_pet(UpdatePetBody::Json(renamed.clone())).send().await.unwrap().into_body();
    assert_eq!(updated, renamed);
    let sold = client.update_pet_with_form(rex_id).status("sold").send().await.unwrap().into_body();
    assert_eq!(sold.status, Some(PetStatus::Sold));
    let inventory = client.get_inventory().send().await.unwrap().into_body();
    assert_eq!((inventory.get("available"), inventory.get("sold")), (Some(&1), Some(&1)));

    // An image as raw bytes.
    let image = Bytes::from_static(b"\x89PNG\r\n\x1a\n\x00\x00");
    let answer =
        client.upload_file(rex_id).additional_metadata("front").body(image.clone()).send().await.unwrap().into_body();
    assert_eq!(answer.message.as_deref(), Some("additionalMetadata: front\nFile uploaded, 10 bytes"));

    client.delete_pet(tom.id.unwrap()).api_key("unused").send().await.unwrap();
    let gone = client.get_pet_by_id(tom.id.unwrap()).send().await.unwrap_err();
    assert_eq!(gone.status().map(|s| s.as_u16()), Some(404));
}

#[tokio::test]
async fn orders_and_users_round_trip() {
    let base = serve().await;
    let client = client(&base);

    let order = Order {
        id: Some(5),
        pet_id: Some(1),
        quantity: Some(2),
        ship_date: Some("2026-12-01T10:00:00Z".into()),
        status: Some(OrderStatus::Placed),
        complete: Some(false),
    };
    let placed = client.place_order().body(PlaceOrderBody::Form(order.clone())).send().await.unwrap().into_body();
    assert_eq!(placed, order);
    assert_eq!(client.get_order_by_id(5).send().await.unwrap().into_body(), order);
    client.delete_order(5).send().await.unwrap();
    assert_eq!(client.delete_order(5).send().await.unwrap_err().status().map(|s| s.as_u16()), Some(404));

    let ann = user("ann", "s3cret");
    assert_eq!(client.create_user().body(ann.clone()).send().await.unwrap().into_body(), ann);
    let bob = user("bob", "pw");
    let last = client.create_users_with_list_input().body(vec![bob.clone()]).send().await.unwrap().into_body();
    assert_eq!(last, bob);
    let login = client.login_user().username("ann").password("s3cret").send().await.unwrap();
    assert_eq!(login.meta.header("x-rate-limit"), Some("5000"));
    assert_eq!(login.into_body(), "logged in user session: ann");
    let wrong = client.login_user().username("ann").password("nope").send().await.unwrap_err();
    assert_eq!(wrong.status().map(|s| s.as_u16()), Some(400));
    client.logout_user().send().await.unwrap();

    let changed = User { email: Some("ann@example.org".into()), ..ann.clone() };
    client.update_user("ann").body(UpdateUserBody::Form(changed.clone())).send().await.unwrap();
    assert_eq!(client.get_user_by_name("ann").send().await.unwrap().into_body(), changed);
    client.create_user().body(CreateUserBody::Json(user("cy", "x"))).send().await.unwrap();
    client.delete_user("cy").send().await.unwrap();
    assert_eq!(client.get_user_by_name("cy").send().await.unwrap_err().status().map(|s| s.as_u16()), Some(404));
}

#[tokio::test]
async fn each_scheme_is_sent_where_the_spec_asks_and_checked() {
    let base = serve().await;
    // The inventory takes only the API key; pets take the OAuth 2 token.
    let key_only = Client::builder()
        .base_url(&base)
        .max_retries(0)
        .credential("api_key", Credential::api_key(API_KEY))
        .build()
        .unwrap();
    key_only.get_inventory().send().await.unwrap();
    let refused = key_only.add_pet(pet("Rex")).send().await.unwrap_err();
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(401));

    let token_only = Client::builder()
        .base_url(&base)
        .max_retries(0)
        .credential("petstore_auth", Credential::bearer(ACCESS_TOKEN))
        .build()
        .unwrap();
    let added = token_only.add_pet(pet("Rex")).send().await.unwrap().into_body();
    // getPetById takes either.
    token_only.get_pet_by_id(added.id.unwrap()).send().await.unwrap();
    key_only.get_pet_by_id(added.id.unwrap()).send().await.unwrap();
    let refused = token_only.get_inventory().send().await.unwrap_err();
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(401));

    let wrong = Client::builder()
        .base_url(&base)
        .max_retries(0)
        .credential("api_key", Credential::api_key("wrong"))
        .build()
        .unwrap();
    assert_eq!(wrong.get_inventory().send().await.unwrap_err().status().map(|s| s.as_u16()), Some(401));
}
