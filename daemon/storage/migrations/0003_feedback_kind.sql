-- Thumbs are not stars: a thumbs-up must not read as one star. Stars keep score 1-5;
-- thumbs store score 1 (up) or -1 (down) with kind 'thumbs'.
ALTER TABLE feedback ADD COLUMN kind TEXT NOT NULL DEFAULT 'stars';
UPDATE feedback SET kind = 'thumbs' WHERE score < 1;
