//! Aggregations over the things a query selects (GetStatistics, GetCardinality): which values
//! a field holds for a thing, and the statistics AWS reports over them.

use super::ast::Field;
use super::eval::{FieldType, IndexedThing, Schema, fold, parse_number};

/// The raw values `field` holds for `thing` under `schema` (several for `thingGroupNames`).
/// A value that does not fit a typed field is not indexed, so it is left out.
pub fn field_values(field: &Field, thing: &IndexedThing, schema: &Schema) -> Vec<String> {
    let connectivity = schema
        .connectivity
        .then_some(thing.connectivity.as_ref())
        .flatten();
    let values: Vec<String> = match field {
        Field::ThingName => vec![thing.name.clone()],
        Field::ThingId => vec![thing.id.clone()],
        Field::ThingTypeName => thing.type_name.iter().cloned().collect(),
        Field::ThingGroupNames => thing.group_names.clone(),
        Field::Attribute(key) => thing.attributes.get(key).cloned().into_iter().collect(),
        Field::RegistryVersion => vec![thing.version.to_string()],
        Field::ConnectivityConnected if schema.connectivity => {
            vec![connectivity.is_some_and(|c| c.connected).to_string()]
        }
        Field::ConnectivityConnected => Vec::new(),
        Field::ConnectivityTimestamp => connectivity
            .map(|c| c.timestamp.to_string())
            .into_iter()
            .collect(),
        Field::ConnectivityDisconnectReason => connectivity
            .and_then(|c| c.disconnect_reason.clone())
            .into_iter()
            .collect(),
        Field::Shadow(_) => Vec::new(),
    };
    let fits = |v: &String| match schema.field_type(field) {
        FieldType::String => true,
        FieldType::Number => parse_number(v).is_some(),
        FieldType::Boolean => super::eval::parse_boolean(v).is_some(),
        FieldType::Version => super::Version::parse(v).is_some(),
    };
    values.into_iter().filter(fits).collect()
}

/// The distinct-value key of a value: matching is case-insensitive, so counting is too.
pub fn cardinality_key(value: &str) -> String {
    fold(value)
}

/// GetStatistics' numbers. For a field that is not numeric only `count` is set, as on AWS.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    pub count: u64,
    pub average: Option<f64>,
    pub sum: Option<f64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub sum_of_squares: Option<f64>,
    pub variance: Option<f64>,
    pub std_deviation: Option<f64>,
}

/// Accumulates statistics one value at a time, so a scan need not keep the values.
#[derive(Debug, Clone, Default)]
pub struct StatisticsBuilder {
    count: u64,
    numeric: bool,
    sum: f64,
    sum_of_squares: f64,
    minimum: f64,
    maximum: f64,
}

impl StatisticsBuilder {
    pub fn numeric() -> Self {
        StatisticsBuilder {
            numeric: true,
            minimum: f64::INFINITY,
            maximum: f64::NEG_INFINITY,
            ..Default::default()
        }
    }

    pub fn add_present(&mut self) {
        self.count += 1;
    }

    pub fn add_number(&mut self, text: &str) {
        if let Some(value) = parse_number(text) {
            self.count += 1;
            self.sum += value;
            self.sum_of_squares += value * value;
            self.minimum = self.minimum.min(value);
            self.maximum = self.maximum.max(value);
        }
    }

    pub fn finish(self) -> Statistics {
        if !self.numeric || self.count == 0 {
            return Statistics {
                count: self.count,
                ..Default::default()
            };
        }
        let n = self.count as f64;
        let average = self.sum / n;
        // Population variance, as AWS reports it; clamped against rounding below zero.
        let variance = (self.sum_of_squares / n - average * average).max(0.0);
        Statistics {
            count: self.count,
            average: Some(average),
            sum: Some(self.sum),
            minimum: Some(self.minimum),
            maximum: Some(self.maximum),
            sum_of_squares: Some(self.sum_of_squares),
            variance: Some(variance),
            std_deviation: Some(variance.sqrt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_numbers() {
        let mut builder = StatisticsBuilder::numeric();
        for v in ["2", "4", "4", "4", "5", "5", "7", "9", "abc"] {
            builder.add_number(v);
        }
        let stats = builder.finish();
        assert_eq!(stats.count, 8);
        assert_eq!(stats.average, Some(5.0));
        assert_eq!(stats.sum, Some(40.0));
        assert_eq!(stats.minimum, Some(2.0));
        assert_eq!(stats.maximum, Some(9.0));
        assert_eq!(stats.variance, Some(4.0));
        assert_eq!(stats.std_deviation, Some(2.0));
    }

    #[test]
    fn count_only_for_text() {
        let mut builder = StatisticsBuilder::default();
        builder.add_present();
        assert_eq!(
            builder.finish(),
            Statistics {
                count: 1,
                ..Default::default()
            }
        );
    }
}
