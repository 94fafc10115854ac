//! Reading the catalog: listing, paging, filtering by tag, one course with
//! its lessons, one lesson of a course.

use std::collections::HashSet;

use courses::{
    catalog::{self, DEFAULT_SEED},
    model::{Course, CourseSummary, Lesson, Page},
};
use reqwest::StatusCode;

use crate::helpers::{TestApp, assert_error, spawn_app};

fn assert_most_popular_first(items: &[CourseSummary]) {
    for pair in items.windows(2) {
        assert!(
            pair[0].popularity >= pair[1].popularity,
            "{} ({}) listed before {} ({})",
            pair[0].id,
            pair[0].popularity,
            pair[1].id,
            pair[1].popularity
        );
    }
}

/// Every page of `/courses?{query}` until the first empty one, asserting
/// each carries the same total; returns the items and that total.
async fn all_pages(app: &TestApp, query: &str, per_page: usize) -> (Vec<CourseSummary>, i64) {
    let mut items = Vec::new();
    let mut total = None;
    for page in 1.. {
        let got: Page<CourseSummary> = app
            .get_ok(&format!("/courses?{query}&per_page={per_page}&page={page}"))
            .await;
        assert_eq!(got.page, page);
        assert_eq!(*total.get_or_insert(got.total), got.total, "page {page}");
        if got.items.is_empty() {
            break;
        }
        assert!(got.items.len() <= per_page);
        items.extend(got.items);
    }
    (items, total.expect("at least one page"))
}

#[tokio::test]
async fn the_default_page_is_the_twenty_most_popular_courses() {
    let app = spawn_app().await;
    let page: Page<CourseSummary> = app.get_ok("/courses").await;
    assert_eq!((page.page, page.per_page), (1, 20));
    assert_eq!(page.items.len(), 20);
    assert_eq!(page.total, app.row_counts().await.courses);
    assert_most_popular_first(&page.items);
    // Popularity is a Zipf weight: rank 1 weighs 1.0.
    assert_eq!(page.items[0].popularity, 1.0);
}

#[tokio::test]
async fn pages_continue_without_overlap_and_end_empty() {
    let app = spawn_app().await;
    let courses = app.row_counts().await.courses;

    let first: Page<CourseSummary> = app.get_ok("/courses?page=1&per_page=20").await;
    let second: Page<CourseSummary> = app.get_ok("/courses?page=2&per_page=20").await;
    let both: Page<CourseSummary> = app.get_ok("/courses?page=1&per_page=40").await;
    assert_eq!([first.items, second.items].concat(), both.items);

    // Walking every page visits every course once, in one popularity order
    // (across page boundaries too). 25 does not divide the course count, so
    // the last page is a partial one.
    let (items, total) = all_pages(&app, "", 25).await;
    assert_eq!(total, courses);
    assert_eq!(items.len() as i64, courses);
    let ids: HashSet<_> = items.iter().map(|c| &c.id).collect();
    assert_eq!(ids.len(), items.len(), "a course was listed twice");
    assert_most_popular_first(&items);

    let beyond: Page<CourseSummary> = app.get_ok("/courses?page=1000&per_page=20").await;
    assert!(beyond.items.is_empty());
    assert_eq!((beyond.page, beyond.total), (1000, courses));
    // The last page a client may ask for (`MAX_PAGE`; beyond it is a 422,
    // bad_input.rs).
    let last_possible: Page<CourseSummary> = app.get_ok("/courses?page=10000&per_page=100").await;
    assert!(last_possible.items.is_empty());
    assert_eq!(last_possible.total, courses);
}

#[tokio::test]
async fn a_tag_lists_exactly_the_courses_carrying_it() {
    let app = spawn_app().await;
    let catalog = catalog::generate(DEFAULT_SEED);
    // The most used tag, so its listing spans several pages.
    let tag = catalog::TAGS
        .iter()
        .max_by_key(|tag| {
            catalog
                .courses
                .iter()
                .filter(|c| c.tags.iter().any(|t| t == *tag))
                .count()
        })
        .expect("a tag vocabulary");
    let expected: HashSet<&str> = catalog
        .courses
        .iter()
        .filter(|c| c.tags.iter().any(|t| t == tag))
        .map(|c| c.id.as_str())
        .collect();
    assert!(expected.len() > 20, "{tag} fills more than one page");

    let (items, total) = all_pages(&app, &format!("tag={tag}"), 20).await;
    for course in &items {
        assert!(course.tags.contains(&tag.to_string()), "{course:?}");
    }
    assert_most_popular_first(&items);
    assert_eq!(total, expected.len() as i64);
    let listed: HashSet<&str> = items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(listed, expected);
    assert_eq!(listed.len(), items.len(), "a course was listed twice");
}

#[tokio::test]
async fn a_search_lists_the_courses_whose_title_or_instructor_contain_it() {
    let app = spawn_app().await;
    let catalog = catalog::generate(DEFAULT_SEED);
    // A word from the most popular course's title, in another case.
    let word = catalog
        .courses
        .iter()
        .max_by(|a, b| a.popularity.total_cmp(&b.popularity))
        .and_then(|c| c.title.split_whitespace().max_by_key(|w| w.len()))
        .expect("a title with a word")
        .to_owned();
    let needle = word.to_lowercase();
    let contains = |title: &str, instructor: &str| {
        title.to_lowercase().contains(&needle) || instructor.to_lowercase().contains(&needle)
    };
    let matches = |c: &CourseSummary| contains(&c.title, &c.instructor);
    let expected: HashSet<&str> = catalog
        .courses
        .iter()
        .filter(|c| contains(&c.title, &c.instructor))
        .map(|c| c.id.as_str())
        .collect();
    let (items, total) = all_pages(&app, &format!("q={}", word.to_uppercase()), 7).await;
    assert!(!items.is_empty(), "{word} is in a title");
    assert_most_popular_first(&items);
    assert_eq!(total, expected.len() as i64);
    let listed: HashSet<&str> = items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(listed, expected);

    // With a tag too: both filters hold.
    let tag = items[0].tags[0].clone();
    let (both, _) = all_pages(&app, &format!("q={needle}&tag={tag}"), 20).await;
    assert!(both.iter().all(|c| matches(c) && c.tags.contains(&tag)));
    assert!(both.iter().any(|c| c.id == items[0].id));

    // LIKE's wildcards are text like any other; blank is no filter.
    for literal in ["%25", "_", "%5C"] {
        let page: Page<CourseSummary> = app.get_ok(&format!("/courses?q={literal}")).await;
        assert_eq!(
            page.total,
            0,
            "q={literal} matched {:?}",
            page.items.first()
        );
    }
    let blank: Page<CourseSummary> = app.get_ok("/courses?q=%20%20").await;
    assert_eq!(blank.total, app.row_counts().await.courses);
}

#[tokio::test]
async fn an_unknown_tag_lists_nothing() {
    let app = spawn_app().await;
    let page: Page<CourseSummary> = app.get_ok("/courses?tag=underwater-basket-weaving").await;
    assert!(page.items.is_empty());
    assert_eq!(page.total, 0);
}

#[tokio::test]
async fn a_course_comes_with_its_lessons_in_order() {
    let app = spawn_app().await;
    let (listed, _) = all_pages(&app, "", 100).await;
    for summary in listed {
        let course: Course = app.get_ok(&format!("/courses/{}", summary.id)).await;
        assert_eq!(course.summary, summary, "the detail matches the listing");
        assert_eq!(course.summary.lesson_count, course.lessons.len() as i64);
        let positions: Vec<i64> = course.lessons.iter().map(|l| l.position).collect();
        let expected: Vec<i64> = (1..=course.lessons.len() as i64).collect();
        assert_eq!(positions, expected, "{}", summary.id);
        assert!(course.lessons.iter().all(|l| l.course_id == summary.id));
    }
}

#[tokio::test]
async fn an_unknown_course_is_404() {
    let app = spawn_app().await;
    for path in [
        "/courses/c9999",
        "/courses/C0001",
        "/courses/c0001%2Flessons",
    ] {
        assert_error(app.get(path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn a_lesson_is_found_only_under_its_own_course() {
    let app = spawn_app().await;
    let course: Course = app.get_ok("/courses/c0001").await;
    let other: Course = app.get_ok("/courses/c0002").await;
    for lesson in &course.lessons {
        let got: Lesson = app
            .get_ok(&format!("/courses/c0001/lessons/{}", lesson.id))
            .await;
        assert_eq!(&got, lesson);
    }

    let foreign = &other.lessons[0].id;
    for path in [
        format!("/courses/c0001/lessons/{foreign}"),
        "/courses/c0001/lessons/c0001-l99".to_owned(),
        format!("/courses/c9999/lessons/{}", course.lessons[0].id),
    ] {
        assert_error(app.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
}
