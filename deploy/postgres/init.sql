-- Sample database for the optional `postgres` service of docker-compose.yml (`--profile with-postgres`).
-- Run once by the postgres image on an empty data directory, as PG_USER in PG_DATABASE (default app).
-- Matches config/schema.json (index "book"); taken from test/fixtures/sql/book.sql + book-data.sql.

CREATE TABLE country (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE city (id serial PRIMARY KEY, name text NOT NULL, country_id int REFERENCES country (id));
CREATE TABLE publisher (id serial PRIMARY KEY, name text NOT NULL, is_active boolean NOT NULL DEFAULT true);
CREATE TABLE author (id serial PRIMARY KEY, name text NOT NULL, date_of_birth date, city_id int REFERENCES city (id));
CREATE TABLE book (
  id serial PRIMARY KEY,
  isbn text NOT NULL UNIQUE,
  title text NOT NULL,
  description text,
  tags jsonb,
  publisher_id int REFERENCES publisher (id),
  publish_date timestamp
);
CREATE TABLE language (id serial PRIMARY KEY, code text NOT NULL);
CREATE TABLE subject (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE book_author (id serial PRIMARY KEY, book_isbn text NOT NULL REFERENCES book (isbn) ON UPDATE CASCADE ON DELETE CASCADE, author_id int NOT NULL REFERENCES author (id) ON DELETE CASCADE);
CREATE TABLE book_language (id serial PRIMARY KEY, book_isbn text NOT NULL REFERENCES book (isbn) ON UPDATE CASCADE ON DELETE CASCADE, language_id int NOT NULL REFERENCES language (id) ON DELETE CASCADE);
CREATE TABLE book_subject (id serial PRIMARY KEY, book_isbn text NOT NULL REFERENCES book (isbn) ON UPDATE CASCADE ON DELETE CASCADE, subject_id int NOT NULL REFERENCES subject (id) ON DELETE CASCADE);
CREATE TABLE rating (id serial PRIMARY KEY, book_isbn text NOT NULL UNIQUE REFERENCES book (isbn) ON UPDATE CASCADE ON DELETE CASCADE, value numeric(3, 1) NOT NULL);
CREATE INDEX ON book_author (book_isbn);
CREATE INDEX ON book_author (author_id);
CREATE INDEX ON book_language (book_isbn);
CREATE INDEX ON book_language (language_id);
CREATE INDEX ON book_subject (book_isbn);
CREATE INDEX ON book_subject (subject_id);
CREATE INDEX ON book (publisher_id);
CREATE INDEX ON author (city_id);
CREATE INDEX ON city (country_id);

INSERT INTO country (name) VALUES ('France'), ('Canada'), ('United Kingdom');
INSERT INTO city (name, country_id) VALUES ('Paris', 1), ('Toronto', 2), ('London', 3);
INSERT INTO publisher (name, is_active) VALUES ('Penguin', true), ('Hachette', false);
INSERT INTO author (name, date_of_birth, city_id) VALUES
  ('Alice Dupont', '1970-03-01', 1), ('Bob Martin', '1965-11-30', 2), ('Carol Smith', NULL, 3);
INSERT INTO book (isbn, title, description, tags, publisher_id, publish_date) VALUES
  ('001', 'It', 'A horror novel', '["horror", "classic"]', 1, '1986-09-15 00:00:00'),
  ('002', 'Carrie', 'First novel', NULL, 2, '1974-04-05 10:30:00'),
  ('003', 'Orphan', NULL, '[]', NULL, NULL);
INSERT INTO language (code) VALUES ('en-GB'), ('fr-FR'), ('de-DE');
INSERT INTO subject (name) VALUES ('Fiction'), ('Horror');
INSERT INTO book_author (book_isbn, author_id) VALUES ('001', 2), ('001', 1), ('002', 3);
INSERT INTO book_language (book_isbn, language_id) VALUES ('001', 2), ('001', 1), ('002', 3);
INSERT INTO book_subject (book_isbn, subject_id) VALUES ('001', 2), ('001', 1);
INSERT INTO rating (book_isbn, value) VALUES ('001', 4.5);

-- What `sluice bootstrap` would do (see `sluice bootstrap --print-sql`), so `sluice run` starts right away:
-- the publication "sluice" covering exactly the tables of config/schema.json, and REPLICA IDENTITY FULL so
-- old values of moved or deleted rows reach the WAL. The replication slot is created by `sluice run`.
CREATE PUBLICATION sluice FOR TABLE
  public.book, public.publisher, public.author, public.book_author, public.city, public.country,
  public.language, public.book_language, public.subject, public.book_subject, public.rating;
ALTER TABLE public.book REPLICA IDENTITY FULL;
ALTER TABLE public.publisher REPLICA IDENTITY FULL;
ALTER TABLE public.author REPLICA IDENTITY FULL;
ALTER TABLE public.book_author REPLICA IDENTITY FULL;
ALTER TABLE public.city REPLICA IDENTITY FULL;
ALTER TABLE public.country REPLICA IDENTITY FULL;
ALTER TABLE public.language REPLICA IDENTITY FULL;
ALTER TABLE public.book_language REPLICA IDENTITY FULL;
ALTER TABLE public.subject REPLICA IDENTITY FULL;
ALTER TABLE public.book_subject REPLICA IDENTITY FULL;
ALTER TABLE public.rating REPLICA IDENTITY FULL;
