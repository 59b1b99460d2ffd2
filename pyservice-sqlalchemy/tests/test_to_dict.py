"""to_dict: ORM objects and rows as JSON-ready dicts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pyservice_sqlalchemy import to_dict
from sqlalchemy import ForeignKey, Numeric, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str]
    secret_note: Mapped[str | None]
    lines: Mapped[list[Line]] = relationship(order_by="Line.id", back_populates="order")


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]


class Line(Base):
    __tablename__ = "lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey(Order.id))
    product_id: Mapped[int] = mapped_column(ForeignKey(Product.id))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/orders.sqlite3")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        teapot = Product(id=1, title="teapot")
        session.add(
            Order(id=7, customer="ada", secret_note="x", lines=[Line(id=1, product=teapot, price=Decimal("9.50"))])
        )
        session.commit()
        yield session
    engine.dispose()


def test_an_orm_object_gives_its_columns_and_no_relationship(session):
    assert to_dict(session.get(Order, 7)) == {"id": 7, "customer": "ada", "secret_note": "x"}


def test_relationships_are_included_when_named_and_dotted_paths_go_further(session):
    order = session.get(Order, 7)
    result = to_dict(order, relationships=["lines", "lines.product"], exclude=["secret_note"])
    assert result == {
        "id": 7,
        "customer": "ada",
        "lines": [
            {"id": 1, "order_id": 7, "product_id": 1, "price": "9.50", "product": {"id": 1, "title": "teapot"}},
        ],
    }


def test_a_many_to_one_relationship_gives_one_dict(session):
    line = session.get(Line, 1)
    assert to_dict(line, relationships=["order"])["order"] == {"id": 7, "customer": "ada", "secret_note": "x"}


def test_a_row_gives_its_labels_and_converts_the_orm_objects_in_it(session):
    row = session.execute(select(Order.customer, Product).join(Order.lines).join(Line.product)).one()
    assert to_dict(row) == {"customer": "ada", "Product": {"id": 1, "title": "teapot"}}


def test_an_unknown_relationship_names_the_class_and_its_relationships(session):
    with pytest.raises(ValueError, match=r"Order has no relationship 'items' \(it has: lines\)"):
        to_dict(session.get(Order, 7), relationships=["items"])


def test_something_else_than_an_orm_object_or_a_row_is_refused():
    with pytest.raises(TypeError, match="expected an ORM object or a Row, got dict"):
        to_dict({"id": 1})


def test_a_single_string_of_relationships_is_refused(session):
    with pytest.raises(TypeError, match="got the string 'lines'"):
        to_dict(session.get(Order, 7), relationships="lines")
