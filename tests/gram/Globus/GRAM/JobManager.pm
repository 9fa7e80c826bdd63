# Test stub of the GRAM5 LRM base class: only what an LRM module calls.
package Globus::GRAM::JobManager;
use strict;
use warnings;
sub new {
    my ($class, $description) = @_;
    return bless { JobDescription => $description, JobDir => $description->directory(), Log => [] }, $class;
}
sub log { my $self = shift; push @{ $self->{Log} }, @_; }
1;
